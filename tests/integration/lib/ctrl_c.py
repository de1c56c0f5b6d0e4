"""ctrl_c.py STOPFILE LOG CMD...: run CMD on a pseudo-terminal of its own, as a
person runs `make run` in a terminal; when STOPFILE appears, type Ctrl-C
(the terminal sends SIGINT to its foreground process group, make included),
then wait for CMD to end.  Everything CMD prints goes to LOG.  Exits with
CMD's exit status (128 + signal when a signal ended it)."""
import os
import pty
import select
import signal
import sys

stop_file, log_path, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    # A shell gives the command it runs on a terminal the default SIGINT;
    # started in the background of a script this process has it ignored,
    # and an ignored SIGINT would be inherited down to make and run.sh.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.execvp(cmd[0], cmd)

status = None
sent = False
with open(log_path, "ab", buffering=0) as log:
    while status is None:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:         # the terminal closed: the child is gone
                data = b""
            log.write(data)
        if not sent and os.path.exists(stop_file):
            os.write(fd, b"\x03")   # what the terminal's Ctrl-C writes
            sent = True
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
