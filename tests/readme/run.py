#!/usr/bin/env python3
"""Runs the shell blocks of the project's READMEs, verbatim.

Every ```sh block of the READMEs listed in READMES must be preceded by a
marker line that says how it is checked:

  <!-- doc-test: first-screen -->   README.md's first block: line 1 starts
                                     the registry (see `daemon`), line 2 is
                                     the command .ci/run executes
  <!-- doc-test: daemon -->         the one command starts a registry with
                                     its defaults: wait for /healthz, one
                                     query (`registry groups` must list
                                     registry-group), SIGINT, exit code 0
  <!-- doc-test: run [FIXTURE..] --> the block runs as one bash script
                                     (errexit, pipefail) from the repository
                                     root and must exit 0. Fixtures:
                                     `registry`: a registry-server with its
                                     defaults and two instances of group
                                     `web` run first; `netns`: (implied by
                                     `registry`) in a network namespace of
                                     its own, so the default ports are free;
                                     `tls`: from a folder holding test
                                     certificates (ca.pem, server.pem, ...);
                                     `venv`: in a fresh Python venv, as if
                                     activated
  <!-- doc-test: tested-by FILE --> FILE runs the block: each command line
                                     appears verbatim in it, or FILE reads
                                     this README itself
  <!-- doc-test: skip REASON -->    not run; the reason is printed

A block with no marker fails the run, so no command can rot unseen. In a
block a background command (`... &`) is given a second to start; a line
whose comment says "Ctrl-C" runs for 3 s and is then interrupted, as a
person would. HOME is a fresh folder for each block (cargo and rustup keep
theirs). A block that leaves a file in the checkout that git would see
fails: what a README builds there belongs in .gitignore.

Needs: root (unshare --net), curl, the debug binaries (REGISTRY_BIN_DIR,
default target/debug: registry-server, registry, registry-example-service)
and, for `tls`, REGISTRY_TLS_CERTS_BIN. Prints one line per block and
"readme: N passed, N failed".
"""

import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time

READMES = [
    "README.md",
    "server/README.md",
    "ffi/README.md",
    "ffi/go/README.md",
    "python/README.md",
    "examples/README.md",
    "tools/README.md",
    "tests/chaos/README.md",
]
MARKER = re.compile(r"<!--\s*doc-test:\s*(.*?)\s*-->")
BLOCK_TIMEOUT = 900

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../.."))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN = os.path.abspath(os.environ.get("REGISTRY_BIN_DIR", os.path.join(TARGET, "debug")))


def blocks(readme):
    """Yields (line number, marker or None, lines) for each ```sh block."""
    lines = open(os.path.join(ROOT, readme), encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```sh":
            start = i + 1
            # The marker: among the blank and HTML comment lines right above.
            m, j = None, i - 1
            while j >= 0 and (not lines[j].strip() or lines[j].lstrip().startswith("<!--")):
                m = m or MARKER.search(lines[j])
                j -= 1
            end = start
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            yield start, (m.group(1) if m else None), lines[start:end]
            i = end
        i += 1


def commands(body):
    """The command lines of a block: not blank, not comments."""
    return [l for l in body if l.strip() and not l.lstrip().startswith("#")]


def strip_comment(line):
    return re.sub(r"\s+#.*$", "", line).strip()


def environment(home):
    env = dict(os.environ)
    real_home = os.path.expanduser("~")
    env.setdefault("CARGO_HOME", os.path.join(real_home, ".cargo"))
    env.setdefault("RUSTUP_HOME", os.path.join(real_home, ".rustup"))
    env["HOME"] = home
    extra = [BIN, os.path.join(env["CARGO_HOME"], "bin"), "/usr/local/go/bin"]
    env["PATH"] = ":".join(extra + [env.get("PATH", "")])
    env.setdefault("RUST_LOG", "warn")
    env.pop("PKG_CONFIG_PATH", None)
    return env


FIXTURE_REGISTRY = """
registry-server --id docs-registry >"$DOCS_LOGS/registry.log" 2>&1 &
until curl -sf http://127.0.0.1:9801/healthz >/dev/null; do sleep 0.1; done
registry-example-service --id web-1 --group web --addr 127.0.0.1:8081 >"$DOCS_LOGS/web-1.log" 2>&1 &
registry-example-service --id web-2 --group web --addr 127.0.0.1:8082 >"$DOCS_LOGS/web-2.log" 2>&1 &
until [ "$(registry members web 2>/dev/null | grep -c '^web-')" = 2 ]; do sleep 0.1; done
"""


def script_of(body):
    """The block as a bash script, with the two allowances for a person."""
    out = []
    for line in body:
        code = strip_comment(line)
        if "Ctrl-C" in line and code:
            out.append(f"timeout -s INT 3 {code} || [ $? = 124 ]")
            continue
        out.append(line)
        if code.endswith("&") and not code.endswith("&&"):
            out.append("sleep 1")
    return "\n".join(out) + "\n"


def run_script(script, fixtures, logs, home, cwd, env_extra):
    prologue = "set -eo pipefail\n"
    if "netns" in fixtures or "registry" in fixtures:
        prologue += "ip link set lo up\n"
    if "registry" in fixtures:
        prologue += FIXTURE_REGISTRY
    prologue += f"cd {shlex.quote(cwd)}\n"
    path = os.path.join(logs, "block.sh")
    with open(path, "w") as f:
        f.write(prologue + script)
    argv = ["bash", path]
    if "netns" in fixtures or "registry" in fixtures:
        argv = ["unshare", "--net"] + argv
    env = environment(home)
    env["DOCS_LOGS"] = logs
    if "PATH_PREFIX" in env_extra:
        env["PATH"] = env_extra["PATH_PREFIX"] + ":" + env["PATH"]
        env["VIRTUAL_ENV"] = env_extra["VIRTUAL_ENV"]
    return run_session(argv, env, logs)


def run_session(argv, env, logs):
    """Runs argv in a session of its own; when it ends (or times out),
    kills what it left running (background jobs, servers). Returns (exit
    code or None, output)."""
    log = os.path.join(logs, "output.log")
    with open(log, "w") as f:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=BLOCK_TIMEOUT)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    out = open(log, errors="replace").read()
    if code is None:
        out += f"\ntimed out after {BLOCK_TIMEOUT} s"
    return code, out


def check_daemon(command, logs, home):
    """Starts `command` in a network namespace of its own: ready, one query, SIGINT, exit 0."""
    script = (
        "ip link set lo up\n"
        f"{command} >\"$DOCS_LOGS/daemon.log\" 2>&1 &\n"
        "pid=$!\n"
        "for _ in $(seq 1 3000); do curl -sf http://127.0.0.1:9801/healthz >/dev/null && break; sleep 0.2; done\n"
        "registry groups | tee \"$DOCS_LOGS/groups.out\"\n"
        "grep -q '^registry-group' \"$DOCS_LOGS/groups.out\"\n"
        "kill -INT $pid\n"
        "wait $pid\n"
    )
    path = os.path.join(logs, "daemon.sh")
    with open(path, "w") as f:
        f.write("set -eo pipefail\n" + script)
    env = environment(home)
    env["DOCS_LOGS"] = logs
    code, out = run_session(["unshare", "--net", "bash", path], env, logs)
    log = os.path.join(logs, "daemon.log")
    if os.path.exists(log):
        out += "\n[daemon log]\n" + open(log, errors="replace").read()[-3000:]
    return code, out


def untracked():
    out = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                         capture_output=True, check=True).stdout
    return set(p for p in out.decode().split("\0") if p)


def check_block(readme, line, marker, body):
    """Returns (passed, detail)."""
    words = marker.split()
    mode, args = words[0], words[1:]
    if mode == "skip":
        return True, "skipped: " + " ".join(args)
    if mode == "tested-by":
        path = os.path.join(ROOT, args[0])
        text = open(path, encoding="utf-8").read()
        # It reads this README and runs the block from there.
        if readme in text or (args[0].endswith(".rs") and "include_str!(\"../README.md\")" in text
                              and os.path.dirname(readme) == args[0].split("/")[0]):
            return True, f"run by {args[0]} (reads {readme})"
        missing = [c for c in commands(body) if c.strip() not in text]
        if missing:
            return False, f"{args[0]} does not run these lines verbatim: {missing}"
        return True, f"run by {args[0]}"
    with tempfile.TemporaryDirectory(prefix="registry-docs-") as tmp:
        home = os.path.join(tmp, "home")
        logs = os.path.join(tmp, "logs")
        os.makedirs(home)
        os.makedirs(logs)
        before = untracked()
        try:
            if mode in ("first-screen", "daemon"):
                cmds = [strip_comment(c) for c in commands(body)]
                if mode == "first-screen":
                    ci = open(os.path.join(ROOT, ".ci/run")).read()
                    if len(cmds) != 2 or not re.search(r"^exec " + re.escape(cmds[1]) + r"\s*$", ci, re.M):
                        return False, f"the first screen must give two commands, the second the one .ci/run executes: {cmds}"
                code, out = check_daemon(cmds[0], logs, home)
            elif mode == "run":
                cwd = ROOT
                if "tls" in args:
                    cwd = os.path.join(tmp, "certs")
                    certs_bin = os.environ.get("REGISTRY_TLS_CERTS_BIN",
                                               os.path.join(BIN, "examples", "tls-test-certs"))
                    subprocess.run([certs_bin, cwd], check=True, capture_output=True)
                env_extra = {}
                if "venv" in args:
                    venv = os.path.join(tmp, "venv")
                    subprocess.run([sys.executable, "-m", "venv", venv], check=True, capture_output=True)
                    env_extra = {"VIRTUAL_ENV": venv, "PATH_PREFIX": os.path.join(venv, "bin")}
                code, out = run_script(script_of(body), args, logs, home, cwd, env_extra)
            else:
                return False, f"unknown doc-test mode {mode!r}"
        finally:
            # Not deleted (someone may be editing the checkout meanwhile):
            # what a block writes into it belongs in .gitignore.
            left = sorted(untracked() - before)
        if code == 0 and left:
            return False, f"the block left files in the checkout (add them to .gitignore): {left}"
        if code != 0:
            tail = "\n".join(out.splitlines()[-60:])
            return False, f"exit {code}\n{tail}"
        return True, "ran"


def main():
    passed = failed = 0
    only = os.environ.get("DOCS_ONLY")  # e.g. server/README.md, while working on one README
    for readme in READMES:
        if only and readme != only:
            continue
        for line, marker, body in blocks(readme):
            where = f"{readme}:{line}"
            if marker is None:
                ok, detail = False, "no <!-- doc-test: ... --> marker before this sh block"
            else:
                t0 = time.monotonic()
                try:
                    ok, detail = check_block(readme, line, marker, body)
                except Exception as e:  # a broken fixture is a failure of this block, not of the run
                    ok, detail = False, f"{type(e).__name__}: {e}"
                detail += f" ({time.monotonic() - t0:.1f} s)"
            print(f"{'PASS' if ok else 'FAIL'} {where} [{marker}] {detail}", flush=True)
            passed += ok
            failed += not ok
    print(f"readme: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
