"""pyro4migration, step 0: the Pyro4 server runs unchanged on geopyro (python -m geopyro.run), and Pyro4 and
Pyro5 clients call it at the same time."""

import subprocess
import sys


def main():
    here = sys.path[0]
    server = subprocess.Popen([sys.executable, "-m", "geopyro.run", "pyro4_server.py"], cwd=here,
                              stdout=subprocess.PIPE, text=True)
    try:
        uri = server.stdout.readline().strip()
        print("server: pyro4_server.py, unchanged, runs on geopyro at %s" % uri, flush=True)
        clients = [subprocess.Popen([sys.executable, script, uri], cwd=here, stdout=subprocess.PIPE, text=True)
                   for script in ("client_pyro4.py", "client_pyro5.py")]
        codes = []
        for client in clients:  # (their output one after the other, not interleaved)
            output, _ = client.communicate(timeout=60)
            print(output, end="", flush=True)
            codes.append(client.returncode)
        codes.append(subprocess.call([sys.executable, "client_moved.py", uri], cwd=here, timeout=60))
    finally:
        server.kill()
        server.wait(10)
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
