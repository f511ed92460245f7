"""Built-in executors: ``local`` (this process) and ``ray`` (a Ray runtime or cluster)."""
