# gunicorn settings of the original deployment: 2 worker processes x 2 threads each (gthread).
# bench/run passes --bind (a free loopback port) and --pid; everything else is as it was.
workers = 2
threads = 2
worker_class = "gthread"
# gunicorn's defaults, spelled out because they shape the overload behaviour being compared:
# up to 2048 connections wait in the kernel's listen backlog, and each worker accepts up to 1000
# connections into its own queue for its 2 threads; nothing sheds load, requests just wait.
backlog = 2048
worker_connections = 1000
keepalive = 2
timeout = 30
accesslog = None
