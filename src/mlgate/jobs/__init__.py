"""Jobs: work that outlives the request that started it, run on threads of the serving process.

One engine (runner.py) for every kind: the row (model.py, stored through repository.py), the
heartbeat that says its process is alive, the recovery of jobs whose process is gone, cancel
requests and progress. A kind (training's jobs, consumers' batches) supplies only its work.
"""
