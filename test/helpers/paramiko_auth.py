"""One authentication attempt with paramiko (none, password: the last argument is the password,, which sends signed public-key requests directly
(no unsigned query first): the only common client that can make a real failed attempt.
Prints JSON: the outcome, the methods the server offered, and the time the answer took."""
import json, socket, sys, time
import paramiko

host, port, user, method, key_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else None
sock = socket.create_connection((host, port))
t = paramiko.Transport(sock)
t.start_client(timeout=10)
result = {"ok": False, "allowed": None, "ms": None, "error": None}
start = time.monotonic()
try:
    if method == "none":
        t.auth_none(user)
    elif method == "password":
        t.auth_password(user, key_path, fallback=False)
    else:
        key = paramiko.Ed25519Key.from_private_key_file(key_path)
        t.auth_publickey(user, key)
    result["ok"] = True
except paramiko.BadAuthenticationType as e:
    result["allowed"] = list(e.allowed_types)
    result["error"] = "bad-type"
except paramiko.AuthenticationException as e:
    result["error"] = str(e)
    result["allowed"] = None
except Exception as e:
    result["error"] = repr(e)
result["ms"] = (time.monotonic() - start) * 1000
t.close()
print(json.dumps(result))
