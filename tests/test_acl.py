"""ACL users (Redis 7): every command refused for a user without it, every key position refused
outside the user's patterns (AI commands, DAGs and scripts' redis.execute included), -@aistore,
AUTH/HELLO, ACL LOG, ACL SAVE/LOAD, `user` lines, and exact replies side by side with redis-server."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from tests.support.server import Err, RawConnection, ServerProcess
from tests.test_redis_parity import reference  # noqa: F401  (the redis-server fixture)

NOPERM_KEYS = "NOPERM this user has no permissions to access one of the keys used as arguments"


def noperm(cmd: str) -> str:
    return f"NOPERM this user has no permissions to run the '{cmd}' command"


@pytest.fixture(scope="module")
def acl_server():
    with ServerProcess() as s:
        yield s


@pytest.fixture
def admin(acl_server: ServerProcess):
    c = acl_server.raw()
    c.command("FLUSHALL")
    c.command("ACL", "LOG", "RESET")
    yield c
    for name in c.command("ACL", "USERS"):
        if name != b"default":
            c.command("ACL", "DELUSER", name)
    c.close()


def login(server: ServerProcess, user: str, password: str = "pw") -> RawConnection:
    c = server.raw()
    assert c.command("AUTH", user, password) == "OK"
    return c


def test_every_command_is_refused_for_a_user_without_it(acl_server: ServerProcess, admin: RawConnection) -> None:
    commands = sorted(n.decode() for n in admin.command("COMMAND", "LIST"))
    infos = {i[0].decode(): i for i in admin.command("COMMAND", "INFO", *commands)}
    assert admin.command("ACL", "SETUSER", "u", "on", ">pw", "~*", "+@all") == "OK"
    u = login(acl_server, "u")
    # AUTH, HELLO, QUIT and RESET (Redis's no-auth commands) are never refused, as in Redis
    always = {"auth", "hello", "quit", "reset"}
    checked = []
    for name in commands:
        if name in always:
            continue
        arity = infos[name][1]
        argc = arity if arity > 0 else -arity
        argv = [name] + ["x"] * (argc - 1)
        assert admin.command("ACL", "SETUSER", "u", f"-{name}") == "OK"
        assert u.command(*argv) == Err(noperm(name)), name
        assert admin.command("ACL", "SETUSER", "u", f"+{name}") == "OK"
        checked.append(name)
    assert len(checked) == len(commands) - len(always)
    assert "ai.modelexecute" in checked and "ai.dagexecute" in checked and "acl" in checked
    # a subcommand is named as Redis names it
    assert admin.command("ACL", "SETUSER", "u", "-config|set") == "OK"
    assert u.command("CONFIG", "SET", "maxclients", "100") == Err(noperm("config|set"))
    assert isinstance(u.command("CONFIG", "GET", "maxclients"), list)
    log = admin.command("ACL", "LOG", "1")[0]
    assert log[:10] == [b"count", 1, b"reason", b"command", b"context", b"toplevel", b"object", b"config|set",
                        b"username", b"u"]
    assert b"user=u" in log[13] and b"cmd=config" in log[13]
    u.close()


def test_aistore_stops_model_and_script_uploads(acl_server: ServerProcess, admin: RawConnection) -> None:
    admin.command("ACL", "SETUSER", "runner", "on", ">pw", "~*", "+@all", "-@aistore")
    u = login(acl_server, "runner")
    refused = {
        "ai.modelstore": ["AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", "x"],
        "ai.modelset": ["AI.MODELSET", "m", "ONNX", "CPU", "BLOB", "x"],
        "ai.scriptstore": ["AI.SCRIPTSTORE", "s", "CPU", "ENTRY_POINTS", "1", "f", "SOURCE", "x"],
        "ai.scriptset": ["AI.SCRIPTSET", "s", "CPU", "SOURCE", "x"],
        "ai.config|loadbackend": ["AI.CONFIG", "LOADBACKEND", "TORCH", "/tmp/evil.py"],
    }
    for name, argv in refused.items():
        assert u.command(*argv) == Err(noperm(name)), name
    assert u.command("EXISTS", "m", "s") == 0
    # the data path and the rest of AI.CONFIG stay open
    assert u.command("AI.TENSORSET", "t", "FLOAT", "1", "VALUES", "1") == "OK"
    assert u.command("AI.CONFIG", "GET", "MODEL_CHUNK_SIZE") == 535822336
    cats = admin.command("ACL", "CAT", "aistore")
    assert sorted(cats) == sorted(n.encode() for n in refused)
    assert b"ai" in admin.command("ACL", "CAT") and b"aistore" in admin.command("ACL", "CAT")
    u.close()


KEY = "{k}"

# one invocation per command family; each {k} is a key position that is checked in turn
KEYED = [
    "GET {k}", "SET {k} v", "SET {k} v GET", "MGET ok:1 {k}", "MSET ok:1 v {k} v", "DEL ok:1 {k}", "EXISTS {k}",
    "RENAME {k} ok:2", "RENAME ok:1 {k}", "COPY ok:1 {k}", "COPY {k} ok:2", "EXPIRE {k} 10", "TTL {k}", "TYPE {k}",
    "INCR {k}", "APPEND {k} x", "GETDEL {k}", "HSET {k} f v", "HGET {k} f", "LPUSH {k} a", "LRANGE {k} 0 -1",
    "OBJECT ENCODING {k}", "MEMORY USAGE {k}", "WATCH {k}", "TOUCH {k}",
    "AI.TENSORSET {k} FLOAT 1 VALUES 1", "AI.TENSORGET {k} META", "AI.MODELGET {k} META", "AI.MODELDEL {k}",
    "AI.SCRIPTGET {k} META", "AI.SCRIPTDEL {k}", "AI.INFO {k}",
    "AI.MODELSTORE {k} ONNX CPU BLOB x",
    "AI.MODELEXECUTE {k} INPUTS 1 ok:in OUTPUTS 1 ok:out",
    "AI.MODELEXECUTE ok:m INPUTS 1 {k} OUTPUTS 1 ok:out",
    "AI.MODELEXECUTE ok:m INPUTS 1 ok:in OUTPUTS 1 {k}",
    "AI.MODELRUN ok:m INPUTS ok:in {k} OUTPUTS ok:out",
    "AI.MODELRUN ok:m INPUTS ok:in OUTPUTS {k}",
    "AI.SCRIPTEXECUTE {k} f KEYS 1 ok:1 INPUTS 1 ok:in",
    "AI.SCRIPTEXECUTE ok:s f KEYS 2 ok:1 {k} INPUTS 1 ok:in",
    "AI.SCRIPTEXECUTE ok:s f KEYS 1 ok:1 INPUTS 2 ok:in {k} ARGS 1 notakey OUTPUTS 1 ok:out",
    "AI.SCRIPTEXECUTE ok:s f INPUTS 1 ok:in OUTPUTS 1 {k}",
    "AI.SCRIPTRUN ok:s f INPUTS ok:in $ {k} OUTPUTS ok:out",
    "AI.SCRIPTRUN ok:s f INPUTS ok:in OUTPUTS {k}",
    "AI.DAGEXECUTE LOAD 1 {k} |> AI.TENSORGET a META",
    "AI.DAGEXECUTE PERSIST 1 {k} |> AI.TENSORSET {k} FLOAT 1 VALUES 1",
    "AI.DAGEXECUTE ROUTING {k} |> AI.TENSORSET a FLOAT 1 VALUES 1",
    "AI.DAGEXECUTE LOAD 1 ok:in |> AI.MODELEXECUTE {k} INPUTS 1 ok:in OUTPUTS 1 o",
    "AI.DAGEXECUTE LOAD 1 ok:in |> AI.SCRIPTEXECUTE {k} f INPUTS 1 ok:in OUTPUTS 1 o",
    "AI.DAGEXECUTE LOAD 1 ok:in |> AI.SCRIPTEXECUTE ok:s f KEYS 1 {k} INPUTS 1 ok:in OUTPUTS 1 o",
    "AI.DAGEXECUTE_RO LOAD 1 {k} |> AI.TENSORGET a META",
    "AI.DAGRUN LOAD 1 ok:in PERSIST 1 {k} |> AI.TENSORSET {k} FLOAT 1 VALUES 1",
    "AI.DAGRUN_RO LOAD 1 {k} |> AI.TENSORGET a META",
]


@pytest.mark.parametrize("template", KEYED)
def test_each_key_position_is_refused_outside_the_patterns(acl_server: ServerProcess, admin: RawConnection,
                                                          template: str) -> None:
    admin.command("ACL", "SETUSER", "k", "on", ">pw", "~ok:*", "+@all")
    u = login(acl_server, "k")
    before = admin.command("DBSIZE")
    words = template.split()
    assert u.command(*[w.replace(KEY, "secret") for w in words]) == Err(NOPERM_KEYS)
    assert admin.command("DBSIZE") == before, "a refused command changed nothing"
    entry = admin.command("ACL", "LOG", "1")[0]
    assert entry[2:8] == [b"reason", b"key", b"context", b"toplevel", b"object", b"secret"]
    # with the key inside the patterns, the command is not refused by ACL (it may fail otherwise)
    reply = u.command(*[w.replace(KEY, "ok:k") for w in words])
    assert not (isinstance(reply, Err) and reply.startswith("NOPERM")), reply
    u.close()


def test_read_and_write_patterns(acl_server: ServerProcess, admin: RawConnection) -> None:
    admin.command("ACL", "SETUSER", "rw", "on", ">pw", "%R~r:*", "%W~w:*", "+@all")
    admin.command("SET", "r:1", "v")
    u = login(acl_server, "rw")
    assert u.command("GET", "r:1") == b"v"
    assert u.command("SET", "r:1", "x") == Err(NOPERM_KEYS)
    assert u.command("SET", "w:1", "x") == "OK"
    assert u.command("GET", "w:1") == Err(NOPERM_KEYS)
    assert u.command("SET", "w:1", "y", "GET") == Err(NOPERM_KEYS), "GET reads the old value"
    assert u.command("COPY", "r:1", "w:2") == 1
    assert u.command("AI.TENSORSET", "w:t", "FLOAT", "1", "VALUES", "1") == "OK"
    assert u.command("AI.TENSORGET", "w:t", "META") == Err(NOPERM_KEYS)
    assert u.command("EXISTS", "r:1", "w:1") == 2, "EXISTS neither reads nor writes: any pattern will do"
    assert admin.command("GET", "r:1") == b"v"
    u.close()


def test_auth_failures_are_logged_and_grouped(acl_server: ServerProcess, admin: RawConnection) -> None:
    admin.command("ACL", "SETUSER", "alice", "on", ">right", "~*", "+@all")
    c = acl_server.raw()
    for _ in range(5):
        assert c.command("AUTH", "alice", "guess") == Err("WRONGPASS invalid username-password pair or user is disabled.")
    assert c.command("HELLO", "3", "AUTH", "alice", "guess") == Err(
        "WRONGPASS invalid username-password pair or user is disabled.")
    log = admin.command("ACL", "LOG")
    assert len(log) == 1
    assert log[0][:10] == [b"count", 6, b"reason", b"auth", b"context", b"toplevel", b"object", b"AUTH",
                           b"username", b"alice"]
    assert c.command("AUTH", "alice", "right") == "OK"
    assert c.command("ACL", "WHOAMI") == b"alice"
    assert b"user=alice" in c.command("CLIENT", "INFO")
    admin.command("ACL", "SETUSER", "alice", "off")
    assert login_fails(acl_server, "alice", "right")
    c.close()


def login_fails(server: ServerProcess, user: str, password: str) -> bool:
    c = server.raw()
    try:
        return c.command("AUTH", user, password) == Err("WRONGPASS invalid username-password pair or user is disabled.")
    finally:
        c.close()


def test_changes_apply_to_connected_clients_and_deluser_disconnects(acl_server: ServerProcess,
                                                                   admin: RawConnection) -> None:
    admin.command("ACL", "SETUSER", "bob", "on", ">pw", "~*", "+@all")
    u = login(acl_server, "bob")
    assert u.command("SET", "a", "1") == "OK"
    admin.command("ACL", "SETUSER", "bob", "-set")
    assert u.command("SET", "a", "2") == Err(noperm("set"))
    assert admin.command("ACL", "DELUSER", "bob", "nobody") == 1
    u.send(b"*1\r\n$4\r\nPING\r\n")
    assert u.is_closed(), "a deleted user's connection is closed"
    assert admin.command("ACL", "DELUSER", "default") == Err("ERR The 'default' user cannot be removed")


def test_multi_queues_are_checked(acl_server: ServerProcess, admin: RawConnection) -> None:
    admin.command("ACL", "SETUSER", "m", "on", ">pw", "~ok:*", "+@all")
    u = login(acl_server, "m")
    assert u.command("MULTI") == "OK"
    assert u.command("SET", "bad", "1") == Err(NOPERM_KEYS)
    assert u.command("SET", "ok:1", "1") == "QUEUED"
    assert u.command("EXEC") == Err("EXECABORT Transaction discarded because of previous errors.")
    assert admin.command("EXISTS", "ok:1") == 0
    assert admin.command("ACL", "LOG", "1")[0][4:6] == [b"context", b"multi"]
    u.close()


def test_requirepass_is_the_default_users_password() -> None:
    with ServerProcess("--requirepass", "s3cret") as s:
        c = s.raw()
        assert c.command("PING") == Err("NOAUTH Authentication required.")
        assert c.command("AUTH", "default", "s3cret") == "OK"
        assert c.command("ACL", "GETUSER", "default")[1] == [b"on"]
        assert c.command("CONFIG", "SET", "requirepass", "other") == "OK"
        d = s.raw()
        assert d.command("AUTH", "s3cret") == Err("WRONGPASS invalid username-password pair or user is disabled.")
        assert d.command("AUTH", "other") == "OK"
        assert c.command("PING") == "PONG", "connections already authenticated stay so"
        c.close()
        d.close()


def test_user_lines_in_the_config_file(tmp_path: Path) -> None:
    conf = tmp_path / "redis.conf"
    conf.write_text("user default on nopass ~* +@all\nuser reader on >pw ~* -@all +@read +ping\n")
    with ServerProcess("--config", str(conf)) as s:
        c = login(s, "reader")
        assert c.command("PING") == "PONG"
        assert c.command("SET", "k", "v") == Err(noperm("set"))
        assert c.command("GET", "k") is None
        assert s.raw().command("ACL", "LIST") == [
            b"user default on nopass sanitize-payload ~* resetchannels +@all",
            (b"user reader on #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 ~* resetchannels "
             b"-@all +@read +ping"),
        ]
        c.close()


def test_acl_save_and_load_round_trip(tmp_path: Path) -> None:
    aclfile = tmp_path / "users.acl"
    with ServerProcess("--aclfile", str(aclfile)) as s:
        c = s.raw()
        assert c.command("ACL", "SETUSER", "ops", "on", ">pw", "~metrics:*", "%R~models:*", "+@all", "-@aistore") == "OK"
        assert c.command("ACL", "SETUSER", "ro", "on", "nopass", "~*", "-@all", "+@read") == "OK"
        listed = c.command("ACL", "LIST")
        assert c.command("ACL", "SAVE") == "OK"
        assert aclfile.read_text().splitlines() == [line.decode() for line in listed]
        assert c.command("ACL", "DELUSER", "ops") == 1
        assert c.command("ACL", "SETUSER", "extra", "on") == "OK"
        assert c.command("ACL", "LOAD") == "OK"
        assert c.command("ACL", "LIST") == listed
        aclfile.write_text(aclfile.read_text() + "user broken on +nosuchcommand\n")
        err = c.command("ACL", "LOAD")
        assert isinstance(err, Err) and "Unknown command or category name in ACL" in err, err
        assert c.command("ACL", "LIST") == listed, "a bad file loads nothing"
        c.close()
    aclfile.write_text("\n".join(line.decode() for line in listed) + "\n")
    with ServerProcess("--aclfile", str(aclfile)) as s:
        c = login(s, "ops")
        assert c.command("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", "x") == Err(noperm("ai.modelstore"))
        c.close()


def test_acl_file_without_aclfile() -> None:
    with ServerProcess() as s:
        c = s.raw()
        err = c.command("ACL", "SAVE")
        assert isinstance(err, Err) and err.startswith("ERR This Redis instance is not configured to use an ACL file.")
        c.close()


SCRIPT = textwrap.dedent('''
    def touch(tensors: List[Tensor], keys: List[str], args: List[str]):
        redis.execute("SET", args[0], "written")
        return tensors[0]

    def run_model(tensors: List[Tensor], keys: List[str], args: List[str]):
        return redisAI.model_execute(args[0], tensors, 1)
    ''')


def test_script_redis_execute_is_checked_against_the_caller(acl_server: ServerProcess, admin: RawConnection) -> None:
    pytest.importorskip("torch")
    assert admin.command("AI.SCRIPTSTORE", "ok:s", "CPU", "ENTRY_POINTS", "2", "touch", "run_model", "SOURCE", SCRIPT) == "OK"
    assert admin.command("AI.TENSORSET", "ok:in", "FLOAT", "1", "VALUES", "1") == "OK"
    admin.command("ACL", "SETUSER", "sc", "on", ">pw", "~ok:*", "+@all")
    u = login(acl_server, "sc")
    ok = u.command("AI.SCRIPTEXECUTE", "ok:s", "touch", "INPUTS", "1", "ok:in", "ARGS", "1", "ok:w", "OUTPUTS", "1", "ok:out")
    assert ok == "OK"
    assert admin.command("GET", "ok:w") == b"written"
    err = u.command("AI.SCRIPTEXECUTE", "ok:s", "touch", "INPUTS", "1", "ok:in", "ARGS", "1", "secret",
                    "OUTPUTS", "1", "ok:out2")
    assert isinstance(err, Err) and NOPERM_KEYS in err, err
    assert admin.command("EXISTS", "secret", "ok:out2") == 0
    entry = admin.command("ACL", "LOG", "1")[0]
    assert entry[2:10] == [b"reason", b"key", b"context", b"script", b"object", b"secret", b"username", b"sc"]
    # the same through a DAG
    err = u.command("AI.DAGEXECUTE", "LOAD", "1", "ok:in", "|>", "AI.SCRIPTEXECUTE", "ok:s", "touch", "INPUTS", "1",
                    "ok:in", "ARGS", "1", "secret", "OUTPUTS", "1", "o")
    assert err == [Err(f"ERR Redis command returned an error: {NOPERM_KEYS}")], "a DAG answers per op"
    assert admin.command("EXISTS", "secret") == 0
    # redisAI.model_execute reads a model key: the caller's patterns apply to it too
    pytest.importorskip("onnxruntime")
    from tests.support.models import onnx_linear

    assert admin.command("AI.MODELSTORE", "secret:m", "ONNX", "CPU", "BLOB", onnx_linear()) == "OK"
    admin.command("AI.TENSORSET", "ok:x", "FLOAT", "1", "4", "VALUES", "1", "2", "3", "4")
    err = u.command("AI.SCRIPTEXECUTE", "ok:s", "run_model", "INPUTS", "1", "ok:x", "ARGS", "1", "secret:m",
                    "OUTPUTS", "1", "ok:y")
    assert isinstance(err, Err) and NOPERM_KEYS in err, err
    assert admin.command("AI.MODELSTORE", "ok:m", "ONNX", "CPU", "BLOB", onnx_linear()) == "OK"
    assert u.command("AI.SCRIPTEXECUTE", "ok:s", "run_model", "INPUTS", "1", "ok:x", "ARGS", "1", "ok:m",
                     "OUTPUTS", "1", "ok:y") == "OK"
    # a user without SET may not SET from a script either
    admin.command("ACL", "SETUSER", "sc", "-set")
    err = u.command("AI.SCRIPTEXECUTE", "ok:s", "touch", "INPUTS", "1", "ok:in", "ARGS", "1", "ok:w2")
    assert isinstance(err, Err) and noperm("set") in err, err
    u.close()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed (make test installs it)")
def test_replies_match_redis_server(reference: int, acl_server: ServerProcess) -> None:  # noqa: F811
    script = [
        ["ACL", "SETUSER", "p1", "on", ">pw", "~cache:*", "%R~ro:*", "+get", "+@string", "-set"],
        ["ACL", "SETUSER", "p2", "+@all", "-@dangerous", "+config|get", "-get", "+@string"],
        # (several single-command rules come out in Redis's hash order, which changes from run to run)
        ["ACL", "SETUSER", "p3", "reset"],
        ["ACL", "SETUSER", "p4", "on", "nopass", "~a", "%W~b", "allchannels", "+@all"],
        ["ACL", "SETUSER", "p4", "~c", "allkeys", "~d"],
        ["ACL", "SETUSER", "p4", "#abc"],
        ["ACL", "SETUSER", "p4", "<nope"],
        ["ACL", "SETUSER", "p4", "+nosuch"],
        ["ACL", "SETUSER", "p4", "+@nosuch"],
        ["ACL", "SETUSER", "p4", "foo"],
        ["ACL", "SETUSER", "p4", "%X~a"],
        ["ACL", "GETUSER", "p1"],
        ["ACL", "GETUSER", "p4"],
        ["ACL", "GETUSER", "nobody"],
        ["ACL", "DELUSER", "nobody", "p3"],
        ["ACL", "DELUSER", "default"],
        ["ACL", "CAT", "nosuch"],
        ["ACL", "DRYRUN", "p1", "get", "cache:1"],
        ["ACL", "DRYRUN", "p1", "get", "other"],
        ["ACL", "DRYRUN", "p1", "set", "cache:1", "v"],
        ["ACL", "DRYRUN", "nobody", "get", "x"],
        ["ACL", "WHOAMI"],
        ["ACL", "GENPASS", "0"],
        ["ACL", "LOG", "-1"],
        ["ACL", "LIST"],
        ["AUTH", "p1", "wrong"],
    ]
    ours, theirs = acl_server.raw(), RawConnection(reference)
    for c in (ours, theirs):
        for name in c.command("ACL", "USERS"):
            if name != b"default":
                c.command("ACL", "DELUSER", name)
        c.command("ACL", "LOG", "RESET")
    for argv in script:
        assert ours.command(*argv) == theirs.command(*argv), argv
    for c in (ours, theirs):
        a = RawConnection(reference if c is theirs else acl_server.port)
        assert a.command("AUTH", "p1", "pw") == "OK"
        replies = [a.command("SET", "cache:1", "v"), a.command("GET", "other"), a.command("GET", "ro:1"),
                   a.command("HSET", "cache:1", "f", "v")]
        c.replies = replies  # type: ignore[attr-defined]
        a.close()
    assert ours.replies == theirs.replies  # type: ignore[attr-defined]
    ours_log, theirs_log = ours.command("ACL", "LOG", "3"), theirs.command("ACL", "LOG", "3")
    strip = [e[:10] for e in ours_log], [e[:10] for e in theirs_log]  # ages and client details differ
    assert strip[0] == strip[1]
    ours.close()
    theirs.close()
