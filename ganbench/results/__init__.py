"""Results on disk and what is made of them: records, atomic writes, leaderboards, statistics, plots, the report, the regression gate, and DataFrames for notebooks."""
