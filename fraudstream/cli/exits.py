"""Exit statuses the client commands share (the worker's own are in ``worker.supervision``).

>>> EXIT_NOT_CONNECTED, EXIT_REFUSED
(1, 2)
"""

#: The broker could not be reached, refused the login, or did not take what was sent.
EXIT_NOT_CONNECTED = 1
#: The input given on the command line is unusable (a definition, a file); nothing was sent.
EXIT_REFUSED = 2
