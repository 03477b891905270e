#!/usr/bin/env python3
"""A client-go exec credential plugin for tests (itest_exec.c, test/integration).

Usage: exec_plugin.py MODE DIR [API_VERSION]

Each run appends one line to DIR/exec-runs-MODE (so tests count runs) and, when
KUBERNETES_EXEC_INFO is set, writes it to DIR/exec-info-MODE, with the value of
$EXEC_TEST_ENV to DIR/exec-env-MODE. Modes:

  ok        print an ExecCredential with the token in DIR/token
  expiring  the same, expiring EXEC_TEST_TTL seconds from now (default 3)
  wrong1st  the first run prints a token the server refuses, later runs DIR/token
  cert      print DIR/client.crt and DIR/client.key as clientCertificateData/clientKeyData
  fail      print two lines to stderr and exit 3
  slow      sleep 60 s, then print the credential
  garbage   print text that is not JSON (and contains the token)
  big       print 2 MiB
  signal    kill itself with SIGTERM
"""
import datetime
import json
import os
import signal
import sys
import time

mode, d = sys.argv[1], sys.argv[2]
api = sys.argv[3] if len(sys.argv) > 3 else "client.authentication.k8s.io/v1"
with open(os.path.join(d, "exec-runs-" + mode), "a") as f:
    f.write("run\n")
runs = sum(1 for _ in open(os.path.join(d, "exec-runs-" + mode)))
if os.environ.get("KUBERNETES_EXEC_INFO"):
    with open(os.path.join(d, "exec-info-" + mode), "w") as f:
        f.write(os.environ["KUBERNETES_EXEC_INFO"])
    with open(os.path.join(d, "exec-env-" + mode), "w") as f:
        f.write(os.environ.get("EXEC_TEST_ENV", ""))
token = open(os.path.join(d, "token")).read().strip()


def emit(status):
    sys.stdout.write(json.dumps({"apiVersion": api, "kind": "ExecCredential", "status": status}))


if mode == "ok":
    emit({"token": token})
elif mode == "expiring":
    ttl = float(os.environ.get("EXEC_TEST_TTL", "3"))
    exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=ttl)
    emit({"token": token, "expirationTimestamp": exp.strftime("%Y-%m-%dT%H:%M:%SZ")})
elif mode == "wrong1st":
    emit({"token": "not-the-token" if runs == 1 else token})
elif mode == "cert":
    emit({"clientCertificateData": open(os.path.join(d, "client.crt")).read(),
          "clientKeyData": open(os.path.join(d, "client.key")).read()})
elif mode == "fail":
    sys.stderr.write("error: the credentials of profile prod expired\nrun `login` again\n")
    sys.exit(3)
elif mode == "slow":
    time.sleep(60)
    emit({"token": token})
elif mode == "garbage":
    sys.stdout.write("Welcome! your token is " + token + "\n")
elif mode == "big":
    sys.stdout.write("x" * (2 << 20))
elif mode == "signal":
    os.kill(os.getpid(), signal.SIGTERM)
