#!/usr/bin/env python3
"""Independent verifier of Staydown export files (SPEC.md section 19).

Written from SPEC.md, in Python 3 with nothing beyond Debian's packaged
libraries: python3-cryptography for Ed25519, tomllib (Python >= 3.11) for
the roster, and a hand-written protobuf decoder (no python3-protobuf).

Usage: staydown_verify.py FILE --roster ROSTER [--json]

Exit 0: everything holds; 1: violations; 2: the file (or the roster)
cannot be read.

What it checks, and what it leaves out, is listed in README.md next to
this file.
"""

import argparse
import base64
import hashlib
import ipaddress
import json
import sys

try:
    import tomllib
except ImportError:  # Python < 3.11
    sys.stderr.write("staydown_verify: needs Python 3.11 or later (tomllib)\n")
    sys.exit(2)

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:
    sys.stderr.write("staydown_verify: needs the Python cryptography module "
                     "(Debian: apt-get install python3-cryptography)\n")
    sys.exit(2)


MAGIC = b"staydown export v1\n"          # SPEC 19.1
MAX_RECORD = 4 << 20                      # SPEC 19.1: 1 <= len <= 4 MiB
MAX_ENTRY_SIZE = 65536                    # SPEC 2.4
SIG_CONTEXT = b"staydown/v1/entry\n"      # SPEC 3


class Malformed(Exception):
    """The bytes are not a valid v1 entry (finding `malformed`)."""


class FileDamage(Exception):
    """The export's framing breaks (finding `file`, or exit 2 before the header)."""


# ---------------------------------------------------------------------------
# Varints

def read_varint(buf, pos):
    """Reads an unsigned LEB128 varint of at most 10 bytes (64 bits).
    Returns (value, new position, minimal)."""
    value = 0
    shift = 0
    start = pos
    while True:
        if pos >= len(buf):
            raise Malformed("truncated varint")
        b = buf[pos]
        pos += 1
        if pos - start == 10 and b > 1:
            raise Malformed("varint overflows 64 bits")
        value |= (b & 0x7F) << shift
        if b < 0x80:
            break
        shift += 7
        if pos - start >= 10:
            raise Malformed("varint longer than 10 bytes")
    n = pos - start
    minimal = n == 1 or buf[pos - 1] != 0
    return value, pos, minimal


def encode_varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


# ---------------------------------------------------------------------------
# Strict (canonical) decoder for the Entry schema, SPEC 2.1 and 2.3.
#
# A field is (name, type, repeated, oneof) where type is one of "uint32",
# "uint64", "int64", "bool", "enum", "string", "bytes" or a message name.

SCALARS = {"uint32", "uint64", "int64", "bool", "enum"}

SCHEMA = {
    "Entry": {
        1: ("version", "uint32", False, None),
        2: ("federation", "string", False, None),
        3: ("author", "bytes", False, None),
        4: ("seq", "uint64", False, None),
        5: ("prev", "bytes", False, None),
        6: ("timestamp_ms", "int64", False, None),
        10: ("addition", "Addition", False, "payload"),
        11: ("retraction", "Retraction", False, "payload"),
        12: ("dispute", "Dispute", False, "payload"),
        13: ("allow", "Allow", False, "payload"),
        14: ("notice", "Notice", False, "payload"),
        15: ("notice_update", "NoticeUpdate", False, "payload"),
        16: ("notice_reply", "NoticeReply", False, "payload"),
        17: ("amendment", "Amendment", False, "payload"),
        18: ("approval", "Approval", False, "payload"),
        19: ("rotation", "Rotation", False, "payload"),
        20: ("peer_update", "PeerUpdate", False, "payload"),
    },
    "Signal": {
        1: ("multihash", "bytes", False, "value"),
        2: ("pdq", "bytes", False, "value"),
        3: ("url", "string", False, "value"),
        4: ("account", "Account", False, "value"),
        5: ("vpdq", "bytes", False, "value"),
        6: ("domain", "Domain", False, "value"),
    },
    "Domain": {
        1: ("name", "string", False, None),
        2: ("subdomains", "bool", False, None),
    },
    "Account": {
        1: ("service", "string", False, None),
        2: ("id", "string", False, None),
    },
    "Label": {
        1: ("slug", "string", False, None),
        2: ("text", "string", False, None),
    },
    "Addition": {
        1: ("signals", "Signal", True, None),
        2: ("labels", "Label", True, None),
        3: ("case_ref", "string", False, None),
    },
    "Retraction": {
        1: ("target", "bytes", False, None),
        2: ("reason", "string", False, None),
        3: ("signals", "Signal", True, None),
    },
    "Dispute": {
        1: ("target", "bytes", False, None),
        2: ("reason", "string", False, None),
        3: ("signals", "Signal", True, None),
    },
    "Allow": {
        1: ("signals", "Signal", True, None),
        2: ("category", "string", False, None),
        3: ("reason", "string", False, None),
    },
    "Sealed": {
        1: ("recipients", "Recipient", True, None),
        2: ("nonce", "bytes", False, None),
        3: ("ciphertext", "bytes", False, None),
    },
    "Recipient": {
        1: ("member", "bytes", False, None),
        2: ("sealed_key", "bytes", False, None),
    },
    "Notice": {
        1: ("addressee", "bytes", False, None),
        2: ("signals", "Signal", True, None),
        3: ("category", "Label", False, None),
        4: ("legal_basis", "string", False, None),
        5: ("binding", "bool", False, None),
        6: ("deadline_ms", "int64", False, None),
        7: ("details", "Sealed", False, None),
        8: ("blocking", "Blocking", False, None),
    },
    "Blocking": {
        1: ("start_ms", "int64", False, None),
        2: ("end_ms", "int64", False, None),
    },
    "NoticeUpdate": {
        1: ("notice", "bytes", False, None),
        2: ("withdraw", "bool", False, None),
        3: ("deadline_ms", "int64", False, None),
        4: ("details", "Sealed", False, None),
    },
    "NoticeReply": {
        1: ("notice", "bytes", False, None),
        2: ("status", "enum", False, None),
        3: ("reason", "enum", False, None),
        4: ("text", "string", False, None),
        5: ("action_time_ms", "int64", False, None),
    },
    # Membership (SPEC 12.2).
    "MemberBlock": {
        1: ("name", "string", False, None),
        2: ("role", "string", False, None),
        3: ("author_key", "bytes", False, None),
        4: ("peer_id", "string", False, None),
        5: ("addrs", "string", True, None),
    },
    "VotingRule": {
        1: ("roles", "string", True, None),
        2: ("threshold_percent", "uint32", False, None),
    },
    "Amendment": {
        1: ("base", "uint64", False, None),
        2: ("admit", "MemberBlock", False, "change"),
        3: ("remove", "Removal", False, "change"),
        4: ("role", "RoleChange", False, "change"),
        5: ("revoke", "Revocation", False, "change"),
        6: ("rule", "VotingRule", False, "change"),
    },
    "Removal": {
        1: ("member", "string", False, None),
        2: ("key", "bytes", False, None),
        3: ("after_seq", "uint64", False, None),
    },
    "RoleChange": {
        1: ("member", "string", False, None),
        2: ("key", "bytes", False, None),
        3: ("after_seq", "uint64", False, None),
        4: ("role", "string", False, None),
    },
    "Revocation": {
        1: ("member", "string", False, None),
        2: ("key", "bytes", False, None),
        3: ("after_seq", "uint64", False, None),
        4: ("new_key", "bytes", False, None),
    },
    "Approval": {
        1: ("proposal", "bytes", False, None),
        2: ("base", "uint64", False, None),
    },
    "Rotation": {
        1: ("new_key", "bytes", False, None),
    },
    "PeerUpdate": {
        1: ("peer_id", "string", False, None),
        2: ("addrs", "string", True, None),
    },
}

PAYLOAD_KINDS = {
    "addition": "addition",
    "retraction": "retraction",
    "dispute": "dispute",
    "allow": "allow",
    "notice": "notice",
    "notice_update": "notice-update",
    "notice_reply": "notice-reply",
    "amendment": "amendment",
    "approval": "approval",
    "rotation": "rotation",
    "peer_update": "peer-update",
}
MEMBERSHIP_KINDS = {"amendment", "approval", "rotation", "peer-update"}


def decode_canonical(msg, buf, depth=0):
    """Decodes buf as message msg, accepting exactly the canonical encoding
    of SPEC 2.3. Returns a dict of the fields present (repeated fields as
    lists; absent fields are missing from the dict; "_oneof" maps each oneof
    group to the name of its set member)."""
    if depth > 16:
        raise Malformed("%s: nested too deep" % msg)
    schema = SCHEMA[msg]
    out = {"_oneof": {}}
    pos = 0
    last_num = 0
    while pos < len(buf):
        key, pos, minimal = read_varint(buf, pos)
        if not minimal:
            raise Malformed("%s: over-long tag varint" % msg)  # 2.3 rule 5
        num, wt = key >> 3, key & 7
        if num == 0 or num not in schema:
            raise Malformed("%s: unknown field %d" % (msg, num))  # rule 6
        name, typ, repeated, oneof = schema[num]
        want_wt = 0 if typ in SCALARS else 2
        if wt != want_wt:
            raise Malformed("%s.%s: wire type %d, want %d" % (msg, name, wt, want_wt))
        if num < last_num:
            raise Malformed("%s.%s: fields out of order" % (msg, name))  # rule 1
        if num == last_num and not repeated:
            raise Malformed("%s.%s: field repeated" % (msg, name))  # rule 7
        last_num = num
        if oneof is not None:
            if oneof in out["_oneof"]:
                raise Malformed("%s: two members of oneof %s" % (msg, oneof))  # rule 7
            out["_oneof"][oneof] = name
        if wt == 0:
            v, pos, minimal = read_varint(buf, pos)
            if not minimal:
                raise Malformed("%s.%s: over-long varint" % (msg, name))
            if v == 0:
                raise Malformed("%s.%s: zero value written out" % (msg, name))  # rule 2
            if typ == "uint32" and v >= 1 << 32:
                raise Malformed("%s.%s: value exceeds uint32" % (msg, name))
            if typ == "bool" and v != 1:
                raise Malformed("%s.%s: bool not encoded as 0x01" % (msg, name))
            if typ == "enum":
                # An enum is an int32, negative values sign-extended to 64 bits.
                if (1 << 31) <= v < (1 << 64) - (1 << 31):
                    raise Malformed("%s.%s: enum value out of int32 range" % (msg, name))
                if v >= 1 << 63:
                    v -= 1 << 64
            if typ == "int64" and v >= 1 << 63:
                v -= 1 << 64
            out[name] = v
            continue
        n, pos, minimal = read_varint(buf, pos)
        if not minimal:
            raise Malformed("%s.%s: over-long length" % (msg, name))
        if n > len(buf) - pos:
            raise Malformed("%s.%s: truncated" % (msg, name))
        data = bytes(buf[pos:pos + n])
        pos += n
        if typ == "bytes" or typ == "string":
            if n == 0 and oneof is None and not repeated:
                raise Malformed("%s.%s: empty value written out" % (msg, name))  # rule 3
            if typ == "string":
                try:
                    data = data.decode("utf-8")
                except UnicodeDecodeError:
                    raise Malformed("%s.%s: not valid UTF-8" % (msg, name))  # rule 8
            v = data
        else:
            v = decode_canonical(typ, data, depth + 1)
        if repeated:
            out.setdefault(name, []).append(v)
        else:
            out[name] = v
    return out


# ---------------------------------------------------------------------------
# Validation of an entry's content: SPEC 5.1, 6, 7, 8.

LABELS = {
    "imminent-credible-threat", "graphic-violence",
    "glorification-of-terrorist-acts", "recruitment-and-instruction",
    "attacker-manifesto", "branded-terrorist-publication", "other",
}
ALLOW_CATEGORIES = {"counter-speech", "news", "research", "other"}


def blen(s):
    return len(s.encode("utf-8"))


def is_id(b):
    return isinstance(b, bytes) and len(b) == 34 and b[0] == 0x12 and b[1] == 0x20


def check_text(field, s, maxlen, required):
    if required and s == "":
        raise Malformed("%s: required" % field)
    if blen(s) > maxlen:
        raise Malformed("%s: %d bytes, limit %d" % (field, blen(s), maxlen))


def check_label(field, label):
    if label is None:
        raise Malformed("%s: missing" % field)
    slug, text = label.get("slug", ""), label.get("text", "")
    if slug not in LABELS:
        raise Malformed("%s: %r is not in the vocabulary" % (field, slug))
    if slug == "other" and text == "":
        raise Malformed("%s: other needs text" % field)
    if slug != "other" and text != "":
        raise Malformed("%s: only other carries text" % field)
    if blen(text) > 256:
        raise Malformed("%s: text longer than 256 bytes" % field)


def check_signals(field, sigs, lo):
    if not lo <= len(sigs) <= 1000:
        raise Malformed("%s: want %d to 1000 signals, got %d" % (field, lo, len(sigs)))
    for i, s in enumerate(sigs):
        check_signal("%s[%d]" % (field, i), s)


def check_named_signals(field, sigs):
    """SPEC 6.2, 6.3: none (all of the target's), or up to 1000 valid
    signals in strictly increasing index-key order (SPEC 7.5)."""
    check_signals(field, sigs, 0)
    keys = [signal_key(s) for s in sigs]
    for i in range(1, len(keys)):
        if keys[i - 1] >= keys[i]:
            raise Malformed("%s[%d]: not after the signal before it in index-key order" % (field, i))


def signal_key(s):
    """SPEC 7.5: the index key of a valid signal."""
    member = s["_oneof"]["value"]
    v = s[member]
    if member == "multihash":
        if v[:2] == b"\x12\x20":
            return b"\x01" + v[2:]
        return b"\x02" + v[3:]  # md5: d5 01 10
    if member == "pdq":
        return b"\x03" + v
    if member == "url":
        return b"\x04" + v.encode()
    if member == "vpdq":
        return b"\x06" + hashlib.sha256(v).digest()
    if member == "domain":
        return b"\x07" + (b"*." if v.get("subdomains") else b"") + v.get("name", "").encode()
    return b"\x05" + v.get("service", "").encode() + b"\x00" + v.get("id", "").encode()


SIGNAL_TYPES = ("sha256", "md5", "pdq", "url", "account", "vpdq", "domain")


def signal_type(s):
    """SPEC 7: the type name of a valid signal."""
    member = s["_oneof"]["value"]
    if member == "multihash":
        return "sha256" if s[member][:2] == b"\x12\x20" else "md5"
    return member


def check_signal(field, s):
    member = s["_oneof"].get("value")
    if member is None:
        raise Malformed("%s: no value" % field)
    v = s[member]
    if member == "multihash":
        # SPEC 7.2: minimal code and length varints, exactly `length` digest
        # bytes; only sha2-256/32 and md5/16 are allowed, so exactly these:
        ok = (len(v) == 34 and v[:2] == b"\x12\x20") or (len(v) == 19 and v[:3] == b"\xd5\x01\x10")
        if not ok:
            raise Malformed("%s: multihash is not sha2-256 or md5" % field)
    elif member == "pdq":
        if len(v) != 32:
            raise Malformed("%s: pdq: want 32 bytes, got %d" % (field, len(v)))
    elif member == "url":
        n = normalize_url(v)
        if n != v:
            raise Malformed("%s: url %r is not normalised (want %r)" % (field, v, n))
    elif member == "account":
        service, ident = v.get("service", ""), v.get("id", "")
        if (service == "" or blen(service) > 253 or service.lower() != service
                or any(c in service for c in ": \t\n\x00")):
            raise Malformed("%s: account service %r" % (field, service))
        if ident == "" or blen(ident) > 256 or "\x00" in ident or "\n" in ident:
            raise Malformed("%s: account id %r" % (field, ident))
    elif member == "vpdq":
        check_vpdq(field, v)
    elif member == "domain":
        check_domain(field, v.get("name", ""))


LDH = set(b"abcdefghijklmnopqrstuvwxyz0123456789-")


def check_domain(field, name):
    """SPEC 7.7 on the wire: 1 to 253 bytes, at least two labels of 1 to 63
    lower-case letters, digits and hyphens, none starting or ending with a
    hyphen, the last not all digits. No IDNA and no public suffix list."""
    b = name.encode("utf-8")
    if not 1 <= len(b) <= 253:
        raise Malformed("%s: domain %r: want 1 to 253 bytes" % (field, name))
    labels = b.split(b".")
    if len(labels) < 2:
        raise Malformed("%s: domain %r: a single label" % (field, name))
    for l in labels:
        if not 1 <= len(l) <= 63 or any(c not in LDH for c in l) or l[:1] == b"-" or l[-1:] == b"-":
            raise Malformed("%s: domain %r: bad label %r" % (field, name, l.decode("utf-8", "replace")))
    if labels[-1].isdigit():
        raise Malformed("%s: domain %r: the last label is all digits" % (field, name))


def check_blocking(p, ts):
    """SPEC 6.9: a blocking order names 1 to 1000 domain signals and
    nothing else, carries no sealed details, and ends after it starts."""
    sigs, b = p.get("signals", []), p["blocking"]
    if not sigs:
        raise Malformed("notice.signals: a blocking order names domain signals")
    for i, sg in enumerate(sigs):
        if sg["_oneof"].get("value") != "domain":
            raise Malformed("notice.signals[%d]: a blocking order names domain signals only" % i)
    if "details" in p:
        raise Malformed("notice.details: a blocking order carries no sealed details")
    start, end = b.get("start_ms", 0), b.get("end_ms", 0)
    if start < 0:
        raise Malformed("notice.blocking.start_ms negative")
    if end != 0 and end <= (start or ts):
        raise Malformed("notice.blocking.end_ms is not after the order's start")


def check_vpdq(field, v):
    """SPEC 7.2, 7.6: 1 to 1500 frames of 32 hash bytes, quality <= 100 and a
    big-endian uint32 timestamp, in order of (timestamp, hash), no two
    consecutive frames with the same hash."""
    if len(v) % 37 != 0 or not 1 <= len(v) // 37 <= 1500:
        raise Malformed("%s: vpdq: %d bytes is not 1 to 1500 frames of 37 bytes" % (field, len(v)))
    prev = None
    for i in range(0, len(v), 37):
        h, q, ts = v[i:i + 32], v[i + 32], int.from_bytes(v[i + 33:i + 37], "big")
        if q > 100:
            raise Malformed("%s: vpdq frame %d: quality %d" % (field, i // 37, q))
        if prev is not None:
            if h == prev[1]:
                raise Malformed("%s: vpdq frame %d: same hash as the frame before it" % (field, i // 37))
            if (ts, h) <= prev:
                raise Malformed("%s: vpdq frame %d: not in canonical order" % (field, i // 37))
        prev = (ts, h)


def check_sealed(field, s):
    if s is None:
        return
    recips = s.get("recipients", [])
    if not 1 <= len(recips) <= 64:
        raise Malformed("%s.recipients: want 1 to 64, got %d" % (field, len(recips)))
    for i, r in enumerate(recips):
        if len(r.get("member", b"")) != 32 or not 1 <= len(r.get("sealed_key", b"")) <= 256:
            raise Malformed("%s.recipients[%d]: bad member or sealed key" % (field, i))
    if not 1 <= len(s.get("nonce", b"")) <= 64:
        raise Malformed("%s.nonce: want 1 to 64 bytes" % field)
    if not 1 <= len(s.get("ciphertext", b"")) <= 32768:
        raise Malformed("%s.ciphertext: want 1 to 32768 bytes" % field)


# Membership payload shapes, SPEC 12.2.

ROLES = ("referral", "platform", "auditor", "access")
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def valid_name(s):
    """A member (or federation) name: 1 to 64 bytes of a-z, 0-9, -, _, ."""
    return 1 <= blen(s) <= 64 and all(c in NAME_CHARS for c in s)


def check_name(field, s):
    if not valid_name(s):
        raise Malformed("%s: %r is not 1 to 64 of a-z, 0-9, '-', '_', '.'" % (field, s))


def check_role(field, s):
    if s not in ROLES:
        raise Malformed("%s: %r is not referral, platform, auditor or access" % (field, s))


def check_key(field, k):
    if not isinstance(k, bytes) or len(k) != 32:
        raise Malformed("%s: want a 32-byte key" % field)
    if k == bytes(32):
        raise Malformed("%s: all zeros" % field)


def check_peer(field, peer_id, addrs):
    if not 1 <= len(peer_id) <= 128 or any(c not in BASE58 for c in peer_id):
        raise Malformed("%s.peer_id: want 1 to 128 base58 characters" % field)
    if len(addrs) > 16:
        raise Malformed("%s.addrs: at most 16" % field)
    for i, a in enumerate(addrs):
        raw = a.encode("utf-8")
        if not 1 <= len(raw) <= 256 or raw[:1] != b"/" or any(c < 0x21 or c > 0x7E for c in raw):
            raise Malformed("%s.addrs[%d]: want 1 to 256 printable ASCII bytes starting with /" % (field, i))


def check_block(field, b):
    check_name(field + ".name", b.get("name", ""))
    check_role(field + ".role", b.get("role", ""))
    check_key(field + ".author_key", b.get("author_key", b""))
    check_peer(field, b.get("peer_id", ""), b.get("addrs", []))


def check_rule(field, r):
    roles = r.get("roles", [])
    if not 1 <= len(roles) <= 3:
        raise Malformed("%s.roles: want 1 to 3" % field)
    for i, role in enumerate(roles):
        check_role("%s.roles[%d]" % (field, i), role)
        if role in roles[:i]:
            raise Malformed("%s.roles[%d]: %r repeated" % (field, i, role))
    if not 50 <= r.get("threshold_percent", 0) <= 99:
        raise Malformed("%s.threshold_percent: want 50 to 99" % field)


def check_amendment(a):
    change = a["_oneof"].get("change")
    if change is None:
        raise Malformed("amendment.change: missing")
    c = a[change]
    field = "amendment." + change
    if change == "admit":
        check_block(field, c)
    elif change == "rule":
        check_rule(field, c)
    else:
        if change == "role":
            check_role(field + ".role", c.get("role", ""))
        check_name(field + ".member", c.get("member", ""))
        check_key(field + ".key", c.get("key", b""))
        if change == "revoke" and c.get("new_key", b""):
            check_key(field + ".new_key", c["new_key"])
            if c["new_key"] == c["key"]:
                raise Malformed(field + ".new_key: is the revoked key")


def check_entry(e):
    """SPEC 5.1, 6 and 12.2. Returns the payload's kind."""
    if e.get("version", 0) != 1:
        raise Malformed("version %d, want 1" % e.get("version", 0))
    fed = e.get("federation", "")
    if not 1 <= len(fed) <= 64 or any(c not in "abcdefghijklmnopqrstuvwxyz0123456789-_." for c in fed):
        raise Malformed("federation %r" % fed)
    if len(e.get("author", b"")) != 32:
        raise Malformed("author: want 32 bytes")
    seq = e.get("seq", 0)
    if seq < 1:
        raise Malformed("seq must be at least 1")
    prev = e.get("prev", b"")
    if seq == 1 and prev:
        raise Malformed("prev must be empty at seq 1")
    if e.get("timestamp_ms", 0) <= 0:
        raise Malformed("timestamp_ms must be positive")
    if seq > 1 and not is_id(prev):
        raise Malformed("prev: not an id")
    member = e["_oneof"].get("payload")
    if member is None:
        raise Malformed("no payload")
    p = e[member]
    ts = e["timestamp_ms"]
    if member == "addition":
        check_signals("addition.signals", p.get("signals", []), 1)
        labels = p.get("labels", [])
        if not 1 <= len(labels) <= 16:
            raise Malformed("addition.labels: want 1 to 16, got %d" % len(labels))
        for i, l in enumerate(labels):
            check_label("addition.labels[%d]" % i, l)
        check_text("addition.case_ref", p.get("case_ref", ""), 256, False)
    elif member in ("retraction", "dispute"):
        if not is_id(p.get("target", b"")):
            raise Malformed("%s.target: not an id" % member)
        check_named_signals(member + ".signals", p.get("signals", []))
        check_text(member + ".reason", p.get("reason", ""), 1024, member == "dispute")
    elif member == "allow":
        check_signals("allow.signals", p.get("signals", []), 1)
        if p.get("category", "") not in ALLOW_CATEGORIES:
            raise Malformed("allow.category %r" % p.get("category", ""))
        check_text("allow.reason", p.get("reason", ""), 1024, True)
    elif member == "notice":
        if len(p.get("addressee", b"")) != 32:
            raise Malformed("notice.addressee: want 32 bytes")
        sigs = p.get("signals", [])
        check_signals("notice.signals", sigs, 0)
        if not sigs and "details" not in p:
            raise Malformed("notice names no target")
        check_label("notice.category", p.get("category"))
        check_text("notice.legal_basis", p.get("legal_basis", ""), 1024, True)
        if p.get("deadline_ms", 0) <= ts:
            raise Malformed("notice.deadline_ms is not after the timestamp")
        check_sealed("notice.details", p.get("details"))
        if "blocking" in p:
            check_blocking(p, ts)
    elif member == "notice_update":
        if not is_id(p.get("notice", b"")):
            raise Malformed("notice_update.notice: not an id")
        d = p.get("deadline_ms", 0)
        if d < 0 or (d > 0 and d <= ts):
            raise Malformed("notice_update.deadline_ms %d" % d)
        if not p.get("withdraw") and d == 0 and "details" not in p:
            raise Malformed("notice_update changes nothing")
        check_sealed("notice_update.details", p.get("details"))
    elif member == "notice_reply":
        if not is_id(p.get("notice", b"")):
            raise Malformed("notice_reply.notice: not an id")
        status, reason = p.get("status", 0), p.get("reason", 0)
        if not 1 <= status <= 8:
            raise Malformed("notice_reply.status %d" % status)
        if status == 5 and not 1 <= reason <= 4:
            raise Malformed("notice_reply.reason: not-executed needs a reason 1 to 4")
        if status != 5 and reason != 0:
            raise Malformed("notice_reply.reason: only a not-executed reply has a reason")
        if p.get("action_time_ms", 0) < 0:
            raise Malformed("notice_reply.action_time_ms negative")
        check_text("notice_reply.text", p.get("text", ""), 4096, False)
    elif member == "amendment":
        check_amendment(p)
    elif member == "approval":
        if not is_id(p.get("proposal", b"")):
            raise Malformed("approval.proposal: not an id")
    elif member == "rotation":
        check_key("rotation.new_key", p.get("new_key", b""))
        if p["new_key"] == e["author"]:
            raise Malformed("rotation.new_key: is the author's own key")
    elif member == "peer_update":
        check_peer("peer_update", p.get("peer_id", ""), p.get("addrs", []))
    return PAYLOAD_KINDS[member]


# ---------------------------------------------------------------------------
# URL normal form, SPEC 7.4: the v1 form, after Go's net/url. A url is
# valid on the wire in v1 or v2 form, and every v2 form is a v1 form, so
# this is the whole rule (url_vectors.py checks it on SPEC 7.4's table).

ENC_PATH, ENC_HOST, ENC_ZONE, ENC_USER, ENC_QUERY, ENC_FRAGMENT = range(6)
ALNUM = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006" \
           "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
HEXDIGITS = frozenset(b"0123456789abcdefABCDEF")


class BadURL(Exception):
    pass


def should_escape(c, mode):
    if c in ALNUM:
        return False
    if mode in (ENC_HOST, ENC_ZONE) and c in b"!$&'()*+,;=:[]<>\"":
        return False
    if c in b"-_.~":
        return False
    if c in b"$&+,/:;=?@":
        if mode == ENC_PATH:
            return c == ord("?")
        if mode == ENC_USER:
            return c in b"@/?:"
        if mode == ENC_QUERY:
            return True
        if mode == ENC_FRAGMENT:
            return False
    if mode == ENC_FRAGMENT and c in b"!()*":
        return False
    return True


def unescape(s, mode):
    """s: bytes. Go's url.unescape (without the '+' handling of queries,
    never used here)."""
    i = 0
    out = bytearray()
    while i < len(s):
        c = s[i]
        if c == 0x25:  # %
            if i + 2 >= len(s) or s[i + 1] not in HEXDIGITS or s[i + 2] not in HEXDIGITS:
                raise BadURL("invalid escape")
            v = int(s[i + 1:i + 3], 16)
            if mode == ENC_HOST and v < 0x80 and s[i:i + 3] != b"%25":
                raise BadURL("invalid escape in host")
            if mode == ENC_ZONE and s[i:i + 3] != b"%25" and v != 0x20 and should_escape(v, ENC_HOST):
                raise BadURL("invalid escape in zone")
            out.append(v)
            i += 3
            continue
        if mode in (ENC_HOST, ENC_ZONE) and c < 0x80 and should_escape(c, mode):
            raise BadURL("invalid character in host")
        out.append(c)
        i += 1
    return bytes(out)


def escape(s, mode):
    out = bytearray()
    for c in s:
        if should_escape(c, mode):
            out += b"%%%02X" % c
        else:
            out.append(c)
    return bytes(out)


def valid_encoded(s, mode):
    for c in s:
        if c in b"!$&'()*+,;=:@[]%":
            continue
        if should_escape(c, mode):
            return False
    return True


def valid_optional_port(p):
    return p == b"" or (p[:1] == b":" and all(0x30 <= c <= 0x39 for c in p[1:]))


def parse_host(host):
    """Go's parseHost for http and https (strict colons)."""
    ob = host.rfind(b"[")
    if ob > 0:
        raise BadURL("invalid IP-literal")
    if ob == 0:
        cb = host.rfind(b"]")
        if cb < 0:
            raise BadURL("missing ]")
        colon_port = host[cb + 1:]
        if not valid_optional_port(colon_port):
            raise BadURL("invalid port")
        hostname = host[1:cb]
        z = hostname.find(b"%25")
        if z >= 0:
            h = unescape(hostname[:z], ENC_HOST) + unescape(hostname[z:], ENC_ZONE)
        else:
            h = unescape(hostname, ENC_HOST)
        try:
            addr_text = h.decode("ascii")
            addr, _, zone = addr_text.partition("%")
            if "%" in addr_text and zone == "":
                raise ValueError
            ipaddress.IPv6Address(addr)
        except (ValueError, UnicodeDecodeError):
            raise BadURL("invalid IPv6 literal")
        return b"[" + h + b"]" + colon_port
    i = host.find(b":")
    if i >= 0 and not valid_optional_port(host[i:]):
        raise BadURL("invalid port")
    return unescape(host, ENC_HOST)


def valid_userinfo(s):
    return all(c in ALNUM or c in b"-._:~!$&'()*+,;=%@" for c in s)


def go_lower(b):
    """Go's strings.ToLower on bytes: invalid UTF-8 bytes become U+FFFD,
    one per byte; U+0130 lower-cases to "i" (Python gives "i" and a
    combining dot)."""
    if all(c < 0x80 for c in b):
        return b.lower()
    out = []
    for c in b.decode("utf-8", "surrogateescape"):
        if "\udc80" <= c <= "\udcff":
            out.append("\ufffd")
        elif c == "\u0130":
            out.append("i")
        else:
            out.append(c.lower())
    return "".join(out).encode("utf-8")


def normalize_url(s):
    """Returns the normal form of s (SPEC 7.4) or raises Malformed."""
    try:
        return _normalize_url(s)
    except BadURL as err:
        raise Malformed("url %r: %s" % (s, err))


def _normalize_url(s):
    if blen(s) > 2048:
        raise BadURL("longer than 2048 bytes")
    s = s.strip(GO_SPACE).encode("utf-8")
    s, _, frag = s.partition(b"#")
    if any(c < 0x20 or c == 0x7F for c in s):
        raise BadURL("control character")
    # getScheme
    scheme, rest = b"", s
    for i, c in enumerate(s):
        if 0x61 <= c <= 0x7A or 0x41 <= c <= 0x5A:
            continue
        if (0x30 <= c <= 0x39 or c in b"+-.") and i > 0:
            continue
        if c == 0x3A:
            if i == 0:
                raise BadURL("missing protocol scheme")
            scheme, rest = s[:i], s[i + 1:]
        break
    scheme = scheme.lower()
    if rest.endswith(b"?") and rest.count(b"?") == 1:
        force_query, rest, query = True, rest[:-1], b""
    else:
        force_query = False
        rest, _, query = rest.partition(b"?")
    if query:
        trimmed = query.decode("utf-8").rstrip(GO_SPACE).encode("utf-8")
        if trimmed != query:
            force_query, query = True, trimmed
    if scheme not in (b"http", b"https"):
        raise BadURL("want an absolute http or https URL")
    if not rest.startswith(b"//"):
        raise BadURL("no host")
    authority, rest = rest[2:], b""
    i = authority.find(b"/")
    if i >= 0:
        authority, rest = authority[:i], authority[i:]
    user = None
    at = authority.rfind(b"@")
    host = parse_host(authority[at + 1:] if at >= 0 else authority)
    if at >= 0:
        ui = authority[:at]
        if not valid_userinfo(ui):
            raise BadURL("invalid userinfo")
        name, colon, password = ui.partition(b":")
        user = (unescape(name, ENC_USER), unescape(password, ENC_USER) if colon else None)
    path = unescape(rest, ENC_PATH)
    raw_path = b"" if escape(path, ENC_PATH) == rest else rest
    if frag:
        unescape(frag, ENC_FRAGMENT)  # only for its error; the fragment is dropped
    # Hostname and Port
    hostname, port = host, b""
    c = host.rfind(b":")
    if c >= 0 and valid_optional_port(host[c:]):
        hostname, port = host[:c], host[c + 1:]
    if hostname.startswith(b"[") and hostname.endswith(b"]"):
        hostname = hostname[1:-1]
    if hostname == b"":
        raise BadURL("no host")
    if b"[" in hostname or b"]" in hostname:
        raise BadURL("bad host")
    hostname = go_lower(hostname)
    if port and not (len(port) <= 5 and 1 <= int(port) <= 65535):
        raise BadURL("port out of range")
    if (scheme == b"http" and port == b"80") or (scheme == b"https" and port == b"443"):
        port = b""
    if b":" in hostname:
        hostname = b"[" + hostname + b"]"
    if port:
        hostname = hostname + b":" + port
    if path == b"":
        path, raw_path = b"/", b""
    # String
    out = scheme + b"://"
    if user is not None:
        out += escape(user[0], ENC_USER)
        if user[1] is not None:
            out += b":" + escape(user[1], ENC_USER)
        out += b"@"
    out += escape(hostname, ENC_HOST)
    ep = None
    if raw_path and valid_encoded(raw_path, ENC_PATH):
        try:
            if unescape(raw_path, ENC_PATH) == path:
                ep = raw_path
        except BadURL:
            pass
    if ep is None:
        ep = b"*" if path == b"*" else escape(path, ENC_PATH)
    if ep and ep[:1] != b"/":
        out += b"/"
    out += ep
    if force_query or query:
        out += b"?" + query
    if len(out) > 2048:
        raise BadURL("normal form longer than 2048 bytes")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise BadURL("normal form is not UTF-8")


# ---------------------------------------------------------------------------
# SignedEntry (SPEC 2.2), signature (SPEC 3), id (SPEC 4).

class Entry:
    __slots__ = ("raw", "id", "signed", "sig", "body", "author", "seq", "prev",
                 "federation", "kind", "addressee", "payload", "blocking", "status")


def decode_signed_entry(raw):
    raw = bytes(raw)
    if len(raw) > MAX_ENTRY_SIZE:
        raise Malformed("%d bytes, limit %d" % (len(raw), MAX_ENTRY_SIZE))
    if len(raw) < 1 or raw[0] != 0x0A:
        raise Malformed("signed entry: does not start with field 1 as bytes")
    n, pos, minimal = read_varint(raw, 1)
    if not minimal:
        raise Malformed("signed entry: over-long entry length")
    if n > len(raw) - pos:
        raise Malformed("signed entry: entry truncated")
    signed = raw[pos:pos + n]
    pos += n
    if raw[pos:pos + 2] != b"\x12\x40":
        raise Malformed("signed entry: want field 2 (signature) of 64 bytes after the entry")
    pos += 2
    if len(raw) - pos != 64:
        raise Malformed("signed entry: signature is not exactly 64 bytes followed by nothing")
    sig = raw[pos:]
    body = decode_canonical("Entry", signed)
    kind = check_entry(body)
    e = Entry()
    e.raw, e.signed, e.sig, e.body, e.kind = raw, signed, sig, body, kind
    e.id = b"\x12\x20" + hashlib.sha256(raw).digest()
    e.author = body["author"]
    e.seq = body["seq"]
    e.prev = body.get("prev", b"")
    e.federation = body["federation"]
    e.addressee = body["notice"].get("addressee") if kind == "notice" else None
    e.blocking = kind == "notice" and "blocking" in body["notice"]
    e.status = body["notice_reply"].get("status", 0) if kind == "notice-reply" else 0
    e.payload = body[body["_oneof"]["payload"]]
    return e


def verify_signature(e):
    try:
        Ed25519PublicKey.from_public_bytes(e.author).verify(e.sig, SIG_CONTEXT + e.signed)
        return True
    except (InvalidSignature, ValueError):
        return False


# ---------------------------------------------------------------------------
# Genesis (SPEC 12.1), role rules (SPEC 9.1, 12.2).

MEMBERSHIP_WRITES = {"amendment", "approval", "rotation", "peer-update"}
MAY_WRITE = {
    "referral": {"addition", "retraction", "dispute", "allow", "notice", "notice-update"} | MEMBERSHIP_WRITES,
    "platform": {"addition", "retraction", "dispute", "allow", "notice-reply"} | MEMBERSHIP_WRITES,
    "auditor": set(MEMBERSHIP_WRITES),
    "access": {"notice-reply"} | MEMBERSHIP_WRITES,
}
# SPEC 9.1: reply statuses only one role writes: blocked (7) and unblocked
# (8) by access providers, removed (2) and disabled (3) by platforms.
REPLY_ROLE = {7: "access", 8: "access", 2: "platform", 3: "platform"}
GENESIS_CONTEXT = b"staydown/v1/genesis\n"   # SPEC 12.1
DEFAULT_RULE = (("referral", "platform"), 50)
OUTSIDE_SLACK = 256                        # SPEC 12.5
OPEN = 1 << 64                             # the end of a key nothing has ended


def b58decode(s):
    n = 0
    for c in s:
        n = n * 58 + BASE58.index(c)
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\x00" * (len(s) - len(s.lstrip("1"))) + raw


def peer_id_key(peer_id):
    """The ed25519 key a peer ID embeds (identity multihash of a libp2p
    PublicKey), or None."""
    raw = b58decode(peer_id)
    if len(raw) == 38 and raw[:6] == b"\x00\x24\x08\x01\x12\x20":
        return raw[6:]
    return None


def enc_bytes(num, b):
    return encode_varint(num << 3 | 2) + encode_varint(len(b)) + b


def enc_varint(num, v):
    return encode_varint(num << 3) + encode_varint(v) if v else b""


def enc_string(num, s):
    return enc_bytes(num, s.encode("utf-8")) if s else b""


def encode_genesis(federation, blocks, rule):
    """The canonical encoding (SPEC 2.3) of a pb.Genesis: federation (1),
    the member blocks in order (2), the voting rule (3, always set)."""
    out = enc_string(1, federation)
    for b in blocks:
        m = enc_string(1, b["name"]) + enc_string(2, b["role"]) + (enc_bytes(3, b["author_key"]) if b["author_key"] else b"")
        m += enc_string(4, b["peer_id"])
        for a in b["addrs"]:
            m += enc_bytes(5, a.encode("utf-8"))
        out += enc_bytes(2, m)
    roles, threshold = rule
    r = b"".join(enc_bytes(1, role.encode("utf-8")) for role in roles) + enc_varint(2, threshold)
    return out + enc_bytes(3, r)


def genesis_hash_of(raw):
    """SPEC 12.1's hash of genesis bytes (an export header's): the bytes
    with every member block's addrs (field 5) left out; None if they are
    not protobuf fields of a Genesis."""
    def fields(buf):
        pos, out = 0, []
        while pos < len(buf):
            fstart = pos
            key, pos, _ = read_varint(buf, pos)
            num, wire = key >> 3, key & 7
            if wire == 0:
                _, pos, _ = read_varint(buf, pos)
                value = b""
            elif wire == 2:
                n, pos, _ = read_varint(buf, pos)
                if pos + n > len(buf):
                    raise Malformed("truncated field")
                value = buf[pos:pos + n]
                pos += n
            else:
                raise Malformed("wire type %d" % wire)
            out.append((num, wire, value, buf[fstart:pos]))
        return out
    try:
        bare = b""
        for num, wire, value, whole in fields(raw):
            if num == 2 and wire == 2:
                block = b"".join(w for n, _, _, w in fields(value) if n != 5)
                bare += enc_bytes(2, block)
            else:
                bare += whole
    except Malformed:
        return None
    return hashlib.sha256(GENESIS_CONTEXT + bare).digest()


class Genesis:
    """A genesis file: the first members (blocks, in file order) and the
    voting rule; its canonical encoding and hash."""

    def __init__(self, federation, blocks, rule):
        self.federation, self.blocks, self.rule = federation, blocks, rule
        self.raw = encode_genesis(federation, blocks, rule)
        # The identity leaves the addresses out (SPEC 12.1): the hash is
        # over the same encoding with every block's addrs empty.
        bare = [dict(b, addrs=[]) for b in blocks]
        self.hash = hashlib.sha256(GENESIS_CONTEXT + encode_genesis(federation, bare, rule)).digest()
        # The genesis roster, for checkpoints: key -> (name, role).
        self.members = {b["author_key"]: (b["name"], b["role"]) for b in blocks}


def load_genesis(path, federation):
    """Reads a genesis file (SPEC 12.1: [[member]] blocks and an optional
    [voting] table) for federation; raises ValueError."""
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    extra = set(doc) - {"member", "voting"}
    if extra:
        raise ValueError("%s: unexpected keys %s: a genesis holds [[member]] blocks and a [voting] table" % (path, sorted(extra)))
    rule = DEFAULT_RULE
    if "voting" in doc:
        v = doc["voting"]
        if not isinstance(v, dict):
            raise ValueError("%s: voting: want a table" % path)
        unknown = set(v) - {"roles", "threshold_percent"}
        if unknown:
            raise ValueError("%s: voting: unknown keys %s" % (path, sorted(unknown)))
        roles, threshold = rule
        if "roles" in v:
            roles = v["roles"]
            if not isinstance(roles, list) or not roles or not all(isinstance(r, str) and r in ROLES for r in roles) or len(set(roles)) != len(roles):
                raise ValueError("%s: voting.roles: want distinct roles of referral, platform, auditor" % path)
            roles = tuple(roles)
        if "threshold_percent" in v:
            threshold = v["threshold_percent"]
            if isinstance(threshold, bool) or not isinstance(threshold, int) or not 50 <= threshold <= 99:
                raise ValueError("%s: voting.threshold_percent: want an integer from 50 to 99" % path)
        rule = (roles, threshold)
    blocks = doc.get("member", [])
    if not isinstance(blocks, list) or not blocks:
        raise ValueError("%s: no members" % path)
    out, names, keys, peers = [], set(), set(), set()
    for i, b in enumerate(blocks, 1):
        if not isinstance(b, dict):
            raise ValueError("%s: member %d is not a table" % (path, i))
        unknown = set(b) - {"name", "role", "author_key", "peer_id", "addrs"}
        if unknown:
            raise ValueError("%s: member %d: unknown keys %s" % (path, i, sorted(unknown)))
        for k in ("name", "role", "author_key", "peer_id"):
            if not isinstance(b.get(k), str) or not b[k]:
                raise ValueError("%s: member %d: %s is required" % (path, i, k))
        addrs = b.get("addrs", [])
        if not isinstance(addrs, list) or not all(isinstance(a, str) for a in addrs):
            raise ValueError("%s: member %d: addrs: want a list of strings" % (path, i))
        ak = b["author_key"]
        if len(ak) != 64 or any(c not in "0123456789abcdefABCDEF" for c in ak):
            raise ValueError("%s: member %d: author_key: want 64 hex characters" % (path, i))
        block = {"name": b["name"], "role": b["role"], "author_key": bytes.fromhex(ak), "peer_id": b["peer_id"], "addrs": list(addrs)}
        try:
            check_block("member %d" % i, block)
        except Malformed as err:
            raise ValueError("%s: %s" % (path, err))
        if peer_id_key(block["peer_id"]) == block["author_key"]:
            raise ValueError("%s: member %d: peer_id is the author key's: the node's transport key must be another key" % (path, i))
        if block["name"] in names or block["author_key"] in keys or block["peer_id"] in peers:
            raise ValueError("%s: member %d: duplicate name, author key or peer ID" % (path, i))
        names.add(block["name"])
        keys.add(block["author_key"])
        peers.add(block["peer_id"])
        out.append(block)
    if not any(b["role"] in rule[0] for b in out):
        raise ValueError("%s: no member has a voting role %s" % (path, list(rule[0])))
    return Genesis(federation, out, rule)


# ---------------------------------------------------------------------------
# Membership (SPEC 12.3, 12.4): the roster as a function of the genesis and
# the membership entries of the logs, in any order.

class Member:
    def __init__(self, block, version):
        self.name, self.role = block["name"], block["role"]
        self.admitted_role = self.role
        self.first = block["author_key"]
        self.peer, self.addrs = block["peer_id"], list(block["addrs"])
        self.segs = []          # role changes in version order: (key, pos, after, role)
        self.removed = False
        self.gone = None        # the key its removal named
        self.platform = self.role == "platform"
        self.chain = []


class KeyState:
    def __init__(self, member, pos, end, why):
        self.member, self.pos, self.end, self.why = member, pos, end, why


def short(k):
    return k.hex()[:16]


def describe(a):
    change = a["_oneof"]["change"]
    c = a[change]
    if change == "admit":
        return "admit %s (%s)" % (c["name"], c["role"])
    if change == "rule":
        return "voting rule %s, more than %d%%" % (c.get("roles", []), c.get("threshold_percent", 0))
    return "%s %s" % (change, c.get("member", ""))


class Version:
    def __init__(self, n, proposal, votes):
        self.n, self.proposal, self.votes = n, proposal, votes  # proposal: Entry; votes: the counted ballots


class History:
    """SPEC 12.3 and 12.4, computed from a genesis and membership entries
    (logged ones: signed, at their place in their log), in any order."""

    def __init__(self, genesis, entries):
        self.genesis = genesis
        self.entries = {}
        self.voids = {}          # entry id -> (entry, why)
        self.conflicts = []      # (member, base, first entry, second entry)
        self.versions = []       # Version, from 1
        self.pending = []        # (entry, votes, needed) at the version in force
        self.members, self.order = {}, []
        self.cuts, self.succ, self.declared = {}, {}, set()
        self.keys = {}
        self.rule = genesis.rule
        self.version = 0
        logs, by_base = {}, {}
        for e in entries:
            if e.kind not in MEMBERSHIP_KINDS or e.federation != genesis.federation or e.id in self.entries:
                continue
            self.entries[e.id] = e
            logs.setdefault(e.author, []).append(e)
            if e.kind in ("amendment", "approval"):
                by_base.setdefault(e.payload.get("base", 0), []).append(e)
        for l in logs.values():
            l.sort(key=lambda e: e.seq)
        self.logs = logs
        # How many rotation entries, in all logs, name each new key: a
        # rotation is void when another names the same key (SPEC 12.4).
        self.rotated_to = {}
        for e in self.entries.values():
            if e.kind == "rotation":
                nk = e.payload["new_key"]
                self.rotated_to[nk] = self.rotated_to.get(nk, 0) + 1
        for b in genesis.blocks:
            self.admit(b)
        self.chains()
        decided = set()
        while True:
            winner, votes, needed, props, first = self.tally(by_base.get(self.version, []))
            if winner is None:
                for pid, p in sorted(props.items()):
                    self.pending.append((p, votes.get(pid, []), needed))
                break
            decided.add(winner.id)
            self.apply(winner.payload)
            self.version += 1
            self.chains()
            self.versions.append(Version(self.version, winner, votes[winner.id]))
        for base, es in by_base.items():
            for e in es:
                if e.kind == "amendment" and e.id not in decided and base != self.version:
                    if base < self.version:
                        self.void(e, "amendment of version %d, which another amendment replaced" % base)
                    else:
                        self.void(e, "amendment of version %d, which never came (the roster is at %d)" % (base, self.version))
        self.peers()

    def void(self, e, why):
        if e.id not in self.voids:
            self.voids[e.id] = (e, why)

    def admit(self, b):
        m = Member(b, self.version)
        self.members[m.name] = m
        self.order.append(m.name)
        self.declared.add(m.first)

    def chains(self):
        """SPEC 12.4: each member's chain of keys and where each ends."""
        before = self.keys
        self.keys = {}
        for name in sorted(self.members):
            self.chain_of(name)
        for k, ks in before.items():
            if k not in self.keys:
                self.keys[k] = KeyState(ks.member, ks.pos, 0, "replaced")

    def chain_of(self, name):
        m = self.members[name]
        m.chain = []
        k, pos = m.first, 0
        while True:
            if k in self.keys and pos > 0:
                return  # a cycle of successors: stop at the first repeat
            m.chain.append(k)
            end, why = self.cuts.get(k, (OPEN, ""))
            if m.removed and k == m.gone:
                self.keys[k] = KeyState(name, pos, end, why)
                return
            if k in self.succ:
                self.keys[k] = KeyState(name, pos, end, why)
                k, pos = self.succ[k], pos + 1
                continue
            nxt = None
            for e in self.logs.get(k, []):
                if e.kind != "rotation":
                    continue
                if e.seq > end:
                    break
                nk = e.payload["new_key"]
                if self.rotated_to.get(nk, 0) > 1 or nk in self.declared:
                    continue  # another rotation, or a block or revocation, names it: void
                self.keys[k] = KeyState(name, pos, e.seq, "rotated")
                nxt = nk
                break
            if nxt is None:
                self.keys[k] = KeyState(name, pos, end, why)
                return
            k, pos = nxt, pos + 1

    def valid(self, e):
        ks = self.keys.get(e.author)
        if ks is None or e.seq > ks.end:
            return None, None
        return self.members[ks.member], ks

    def voters(self):
        return sum(1 for m in self.members.values() if not m.removed and m.role in self.rule[0])

    def tally(self, es):
        """SPEC 12.3 steps 2 to 5 at the current version."""
        voters = self.voters()
        needed = voters * self.rule[1] // 100 + 1
        ballots, props, invalid = [], {}, set()
        for e in es:
            m, ks = self.valid(e)
            if m is None:
                self.void(e, "not a member's key, or past its end, at version %d" % self.version)
                continue
            if m.removed or m.role not in self.rule[0]:
                self.void(e, "%s does not vote at version %d" % (m.name, self.version))
                continue
            if e.kind == "amendment":
                why = self.check(e.payload)
                if why:
                    invalid.add(e.id)
                    self.void(e, why)
                    continue
                props[e.id] = e
                target = e.id
            else:
                target = e.payload["proposal"]
            ballots.append((m.name, ks.pos, e.seq, e, target))
        kept = []
        for b in ballots:
            e, target = b[3], b[4]
            if e.kind == "approval" and target in self.entries:
                t = self.entries[target]
                if t.kind != "amendment" or t.payload.get("base", 0) != self.version:
                    self.void(e, "approves %s, not an amendment of version %d" % (target.hex(), self.version))
                    continue
                if target in invalid:
                    self.void(e, "approves %s, which cannot apply to version %d" % (target.hex(), self.version))
                    continue
            kept.append(b)
        kept.sort(key=lambda b: (b[0], b[1], b[2]))
        first, first_entry, votes = {}, {}, {}
        for name, _, _, e, target in kept:
            if name in first:
                if first[name] != target:
                    self.conflicts.append((name, self.version, first_entry[name], e))
                continue
            first[name], first_entry[name] = target, e
            votes.setdefault(target, []).append(e)
        winner = None
        for pid, p in props.items():
            if len(votes.get(pid, [])) >= needed:
                winner = p
        return winner, votes, needed, props, first

    def is_key_of(self, name, k):
        ks = self.keys.get(k)
        return ks is not None and ks.member == name

    def check_cut(self, name, key):
        m = self.members.get(name)
        if m is None:
            return "%r is not a member" % name
        if m.removed:
            return "%r is removed already" % name
        if not self.is_key_of(name, key):
            return "%s is not a key of %r" % (key.hex(), name)
        return ""

    def check(self, a):
        """Why amendment a cannot apply at the current version ("" if it can)."""
        change = a["_oneof"]["change"]
        c = a[change]
        if change == "admit":
            # SPEC 12.3: the name, author key and peer ID are no member's of
            # the history (removed members' too; any key ever used or named).
            if c["name"] in self.members:
                return "admits %r, a name of the roster's history" % c["name"]
            if c["author_key"] in self.keys or c["author_key"] in self.declared:
                return "admits %r with a key already used or named" % c["name"]
            for m in self.members.values():
                if m.peer == c["peer_id"]:
                    return "admits %r with the peer ID of %r" % (c["name"], m.name)
            return ""
        if change in ("remove", "role", "revoke"):
            why = self.check_cut(c.get("member", ""), c.get("key", b""))
            if why:
                return why
            m = self.members[c["member"]]
            if change == "remove" and m.role in self.rule[0] and self.voters() == 1:
                return "removes %r, the last voter" % m.name
            if change == "role":
                if c["role"] == m.role:
                    return "gives %r the role it has" % m.name
                if m.role in self.rule[0] and c["role"] not in self.rule[0] and self.voters() == 1:
                    return "takes the vote from %r, the last voter" % m.name
            if change == "revoke" and c.get("new_key", b""):
                if c["new_key"] in self.keys or c["new_key"] in self.declared:
                    return "gives %r a new key already used or named" % m.name
            return ""
        roles = c.get("roles", [])
        if not any(not m.removed and m.role in roles for m in self.members.values()):
            return "sets a rule under which no member votes"
        return ""

    def cut(self, key, after, why):
        old = self.cuts.get(key)
        if old is None or after < old[0]:
            self.cuts[key] = (after, why)
        elif why == "removed":
            self.cuts[key] = (old[0], why)

    def apply(self, a):
        change = a["_oneof"]["change"]
        c = a[change]
        if change == "admit":
            self.admit({"name": c["name"], "role": c["role"], "author_key": c["author_key"],
                        "peer_id": c["peer_id"], "addrs": c.get("addrs", [])})
        elif change == "remove":
            m = self.members[c["member"]]
            m.removed, m.gone = True, c["key"]
            self.cut(c["key"], c.get("after_seq", 0), "removed")
        elif change == "role":
            m = self.members[c["member"]]
            m.segs.append((c["key"], self.keys[c["key"]].pos, c.get("after_seq", 0), c["role"]))
            m.role = c["role"]
            m.platform = m.platform or c["role"] == "platform"
        elif change == "revoke":
            self.cut(c["key"], c.get("after_seq", 0), "revoked")
            if c.get("new_key", b""):
                self.succ[c["key"]] = c["new_key"]
                self.declared.add(c["new_key"])
        else:
            self.rule = (tuple(c.get("roles", [])), c.get("threshold_percent", 0))

    def peers(self):
        """SPEC 12.4: peer updates within their keys' ends, in chain order
        then seq, unless another member holds the peer ID."""
        held = {}
        for name in self.order:
            m = self.members[name]
            if not m.removed:
                held[m.peer] = name
        for name in sorted(self.members):
            m = self.members[name]
            for k in m.chain:
                for e in self.logs.get(k, []):
                    if e.kind != "peer-update" or e.seq > self.keys[k].end:
                        continue
                    pid = e.payload.get("peer_id", "")
                    other = held.get(pid)
                    if other is not None and other != name:
                        self.void(e, "peer ID %s is %r's" % (pid, other))
                        continue
                    held.pop(m.peer, None)
                    m.peer, m.addrs = pid, list(e.payload.get("addrs", []))
                    held[pid] = name

    def role_at(self, m, ks, key, seq):
        role = m.admitted_role
        for (k, pos, after, r) in m.segs:
            if ks.pos > pos or (ks.pos == pos and (key != k or seq > after)):
                role = r
        return role

    def judge(self, author, seq, kind, addressee, blocking=False, status=0):
        """SPEC 12.5: (verdict, reason); verdicts "in", "unknown", "outside",
        "past", "role"."""
        ks = self.keys.get(author)
        if ks is None:
            return "unknown", "author %s is no member's key" % author.hex()
        if seq > ks.end:
            verdict = "past" if seq - ks.end > OUTSIDE_SLACK else "outside"
            if ks.end == 0:
                return verdict, "%s's key %s %s: no entry of it counts" % (ks.member, short(author), ks.why)
            return verdict, "%s's key %s %s after seq %d" % (ks.member, short(author), ks.why, ks.end)
        m = self.members[ks.member]
        role = self.role_at(m, ks, author, seq)
        if kind not in MAY_WRITE[role]:
            return "role", "%s (%s) may not write a %s" % (m.name, role, kind)
        if kind == "notice" and blocking:
            to = self.keys.get(addressee)
            if to is None or not self.had_role(self.members[to.member], "access"):
                return "role", "blocking order addressed to %s, no key of a member that has been an access provider" % addressee.hex()
        elif kind == "notice":
            to = self.keys.get(addressee)
            if to is None or not self.members[to.member].platform:
                return "role", "notice addressed to %s, no key of a member that has been a platform" % addressee.hex()
        if kind == "notice-reply" and REPLY_ROLE.get(status, role) != role:
            return "role", "%s (%s) may not reply with status %d" % (m.name, role, status)
        return "in", ""

    @staticmethod
    def had_role(m, role):
        return m.admitted_role == role or any(r == role for (_, _, _, r) in m.segs)

    def name_of(self, k):
        ks = self.keys.get(k)
        return ks.member if ks is not None else k.hex()


# ---------------------------------------------------------------------------
# Export file (SPEC 19.1): lenient protobuf for the framing records.

def parse_fields(buf):
    """Generic protobuf parse: a list of (field number, wire type, value).
    Unknown fields are allowed (they are skipped by the caller)."""
    fields = []
    pos = 0
    while pos < len(buf):
        key, pos, _ = read_varint(buf, pos)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise Malformed("field number 0")
        if wt == 0:
            v, pos, _ = read_varint(buf, pos)
        elif wt == 1:
            if pos + 8 > len(buf):
                raise Malformed("truncated")
            v, pos = buf[pos:pos + 8], pos + 8
        elif wt == 5:
            if pos + 4 > len(buf):
                raise Malformed("truncated")
            v, pos = buf[pos:pos + 4], pos + 4
        elif wt == 2:
            n, pos, _ = read_varint(buf, pos)
            if n > len(buf) - pos:
                raise Malformed("truncated")
            v, pos = bytes(buf[pos:pos + n]), pos + n
        elif wt == 3:
            pos = skip_group(buf, pos, num)
            v = None
        else:
            raise Malformed("wire type %d" % wt)
        fields.append((num, wt, v))
    return fields


def skip_group(buf, pos, num):
    while True:
        if pos >= len(buf):
            raise Malformed("truncated group")
        key, pos, _ = read_varint(buf, pos)
        n, wt = key >> 3, key & 7
        if wt == 4:
            if n != num:
                raise Malformed("mismatched end group")
            return pos
        if wt == 0:
            _, pos, _ = read_varint(buf, pos)
        elif wt == 1:
            pos += 8
        elif wt == 5:
            pos += 4
        elif wt == 2:
            ln, pos, _ = read_varint(buf, pos)
            pos += ln
        elif wt == 3:
            pos = skip_group(buf, pos, n)
        else:
            raise Malformed("wire type %d" % wt)
        if pos > len(buf):
            raise Malformed("truncated group")


def parse_record(body):
    """An ExportRecord: returns (kind, value) with kind one of "header",
    "entry", "evidence", "checkpoint", "trailer" or None (no record set). A oneof set
    twice keeps the last member, as protobuf parsers do."""
    members = {1: "header", 2: "entry", 3: "evidence", 4: "checkpoint", 15: "trailer"}
    kind, parts = None, []
    for num, wt, v in parse_fields(body):
        if num in members and wt == 2:
            if members[num] != kind:
                kind, parts = members[num], []
            parts.append(v)
    if kind is None:
        return None, None
    if kind in ("entry", "evidence", "checkpoint"):
        return kind, parts[-1]
    merged = b"".join(parts)  # message fields given twice are merged
    fields = parse_fields(merged)
    if kind == "header":
        h = {"version": 0, "federation": "", "exporter": "", "genesis": b""}
        for num, wt, v in fields:
            if num == 1 and wt == 0:
                h["version"] = v & 0xFFFFFFFF
            elif num in (2, 4) and wt == 2:
                try:
                    h["federation" if num == 2 else "exporter"] = v.decode("utf-8")
                except UnicodeDecodeError:
                    raise Malformed("header string is not UTF-8")
            elif num == 7 and wt == 2:
                h["genesis"] = v
        return kind, h
    t = {"entries": 0, "evidence": 0, "checkpoints": 0, "sha256": b""}
    for num, wt, v in fields:
        if num == 1 and wt == 0:
            t["entries"] = v
        elif num == 2 and wt == 0:
            t["evidence"] = v
        elif num == 4 and wt == 0:
            t["checkpoints"] = v
        elif num == 3 and wt == 2:
            t["sha256"] = v
    return kind, t


class ExportReader:
    def __init__(self, data):
        self.data = data
        self.pos = 0
        self.index = 0
        self.sha = hashlib.sha256()

    def next_record(self):
        """Returns (kind, value, index, offset) of the next record or raises
        FileDamage."""
        off = self.pos
        if off >= len(self.data):
            raise FileDamage("offset %d: the file ends without a trailer (truncated?)" % off)
        try:
            n, pos, minimal = read_varint(self.data, off)
        except Malformed as err:
            raise FileDamage("offset %d: record length: %s" % (off, err))
        if not minimal:
            raise FileDamage("offset %d: record length is not a minimal varint" % off)
        if n == 0 or n > MAX_RECORD:
            raise FileDamage("offset %d: record length %d, want 1 to %d" % (off, n, MAX_RECORD))
        if n > len(self.data) - pos:
            raise FileDamage("offset %d: record of %d bytes cut short (truncated?)" % (off, n))
        body = self.data[pos:pos + n]
        self.pos = pos + n
        self.index += 1
        try:
            kind, value = parse_record(body)
        except Malformed as err:
            raise FileDamage("offset %d: record %d does not decode: %s" % (off, self.index, err))
        if kind != "trailer":
            # SPEC 19.1: the digest covers every byte before the trailer's
            # length prefix, as they are in the file.
            self.sha.update(self.data[off:self.pos])
        return kind, value, self.index, off


# ---------------------------------------------------------------------------
# Checkpoints (SPEC 20): C2SP tlog-checkpoint signed notes, RFC 6962 trees.

def leaf_hash(entry_id):
    return hashlib.sha256(b"\x00" + entry_id).digest()


def merkle_root(leaves):
    """RFC 6962 MTH over leaf hashes."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + merkle_root(leaves[:k]) + merkle_root(leaves[k:])).digest()


class BadNote(Exception):
    pass


def open_checkpoint(msg, members, federation):
    """Opens a signed checkpoint note against the roster: returns
    (author key, size, root). The note's text is everything up to and
    including the newline before the last blank line; each signature line
    is "\u2014 NAME BASE64(keyhash[4] || ed25519 signature)". A signature
    by a roster member's name must verify; others are ignored; the author
    the origin names must have signed."""
    try:
        split = msg.rfind(b"\n\n")
        if split < 0:
            raise BadNote("not a signed note")
        text, sigs = msg[:split + 1], msg[split + 2:]
        text_s = text.decode("utf-8")
        sig_s = sigs.decode("utf-8")
    except UnicodeDecodeError:
        raise BadNote("not UTF-8")
    for ch in text_s + sig_s:
        if ch < " " and ch != "\n":
            raise BadNote("control character")
    if not sig_s.endswith("\n"):
        raise BadNote("malformed signature block")
    by_name = {v[0]: k for k, v in members.items()}
    signed_by = set()
    for line in sig_s[:-1].split("\n"):
        if not line.startswith("\u2014 "):
            raise BadNote("malformed signature line")
        parts = line[2:].split(" ")
        if len(parts) != 2:
            raise BadNote("malformed signature line")
        name, b64 = parts
        try:
            raw = base64.b64decode(b64, validate=True)
        except Exception:
            raise BadNote("signature is not base64")
        if len(raw) < 5:
            raise BadNote("short signature")
        key = by_name.get(name)
        if key is None:
            continue
        want_hash = hashlib.sha256(name.encode() + b"\n" + b"\x01" + key).digest()[:4]
        if raw[:4] != want_hash:
            continue  # another key of that name: unknown to us
        try:
            Ed25519PublicKey.from_public_bytes(key).verify(raw[4:], text)
        except InvalidSignature:
            raise BadNote("invalid signature by %s" % name)
        signed_by.add(key)
    if not signed_by:
        raise BadNote("no signature by a roster member")
    lines = text_s.split("\n")
    if len(lines) != 4 or lines[3] != "":
        raise BadNote("want three lines (origin, size, root)")
    origin, size_s, root_b64 = lines[0], lines[1], lines[2]
    if not size_s.isdigit() or str(int(size_s)) != size_s or int(size_s) >= 1 << 64:
        raise BadNote("size is not a decimal number")
    try:
        root = base64.b64decode(root_b64, validate=True)
    except Exception:
        raise BadNote("root is not base64")
    if len(root) != 32 or base64.b64encode(root).decode() != root_b64:
        raise BadNote("root is not 32 bytes of base64")
    prefix = "staydown/" + federation + "/"
    if not origin.startswith(prefix):
        raise BadNote("origin %r is not of federation %s" % (origin, federation))
    try:
        author = bytes.fromhex(origin[len(prefix):])
    except ValueError:
        raise BadNote("origin does not end in an author key")
    if len(author) != 32 or origin[len(prefix):] != author.hex():
        raise BadNote("origin does not end in an author key")
    if author not in members:
        raise BadNote("origin names no roster member")
    if author not in signed_by:
        raise BadNote("not signed by the author of the log")
    return author, int(size_s), root


# ---------------------------------------------------------------------------
# The audit (SPEC 19.2).

class Log:
    def __init__(self):
        self.ids = []        # ids[seq-1] of the entries as logged
        self.last = None     # the last entry that took its place in the log
        self.broken = False
        self.done = False    # another log followed it in the file
        self.leaves = []     # Merkle leaf hashes while the chain holds


class Auditor:
    def __init__(self, genesis):
        self.genesis = genesis
        self.members = genesis.members  # the genesis roster, for checkpoints
        self.federation = genesis.federation
        self.logs = {}
        self.current = None
        self.violations = []
        self.entries = 0
        self.evidence = 0
        self.flagged = set()
        self.checkpoints = {}  # author -> [(size, root)]
        self.judged = []       # (record index, entry): every entry judged at the end
        # SPEC 18 signals_by_type of the file, every type a key, in key
        # order as the Go report writes it.
        self.signals_by_type = {t: 0 for t in sorted(SIGNAL_TYPES)}
        self.membership = []   # membership entries whose log held up to them
        self.history = None
        self.voids = []
        self.header_genesis = "same"
        self.raws = {}         # entry id -> SignedEntry bytes, for evidence

    def checkpoint(self, raw, index):
        try:
            author, size, root = open_checkpoint(raw, self.members, self.federation)
        except BadNote as err:
            self.fail("checkpoint", "record %d: checkpoint: %s" % (index, err))
            return
        for (osize, oroot) in self.checkpoints.get(author, []):
            if osize == size and oroot != root:
                self.flagged.add(author)
                self.fail("checkpoint-conflict", "record %d: %s signed two checkpoints of size %d with different roots" % (index, author.hex(), size))
        self.checkpoints.setdefault(author, []).append((size, root))

    def fail(self, kind, message, evidence=()):
        self.violations.append({"kind": kind, "message": message, "evidence": [r.hex() for r in evidence]})

    def header(self, h):
        """SPEC 19.1, 19.2: the header's genesis, if any, must be ours: the
        same hash (SPEC 12.1: addresses left out)."""
        if not h["genesis"]:
            self.header_genesis = "absent"
            return
        theirs = genesis_hash_of(h["genesis"])
        if theirs != self.genesis.hash:
            self.header_genesis = "other"
            shown = theirs.hex() if theirs is not None else "(not a genesis)"
            self.fail("genesis", "the header's genesis %s is not the genesis given (%s)" % (shown, self.genesis.hash.hex()))

    def add(self, rec_kind, raw, index):
        where = "record %d" % index
        try:
            e = decode_signed_entry(raw)
        except Malformed as err:
            self.fail("malformed", "%s: malformed entry: %s" % (where, err), [raw])
            return
        untrusted = False
        if not verify_signature(e):
            self.fail("bad-signature", "%s: %s seq %d (%s): signature does not verify" % (where, e.author.hex(), e.seq, e.id.hex()), [e.raw])
            untrusted = True
        elif e.federation != self.federation:
            self.fail("wrong-federation", "%s: entry %s is for %r, the genesis's federation is %r" % (where, e.id.hex(), e.federation, self.federation), [e.raw])
            return
        if rec_kind == "evidence":
            # An equivocation proves a fork by the key, whoever holds it:
            # evidence is not judged against the membership (SPEC 19.2).
            if not untrusted:
                self.add_evidence(e, where)
            return
        if not untrusted:
            self.judged.append((index, e))
        self.raws.setdefault(e.id, e.raw)
        self.entries += 1
        log = self.logs.get(e.author)
        if log is None:
            log = self.logs[e.author] = Log()
        if e.author != self.current:
            old = self.logs.get(self.current)
            if old is not None:
                old.done = True
            self.current = e.author
            if log.done:
                self.fail("reordered", "%s: the log of %s appears in two places of the file" % (where, e.author.hex()))
                log.broken = True
                return
        last_seq = log.last.seq if log.last is not None else 0
        if e.seq == last_seq + 1 and (log.last is None or e.prev == log.last.id):
            pass
        elif e.seq == last_seq + 1:
            self.fail("broken-link", "%s: %s seq %d: prev %s is not the id of seq %d (%s)" % (
                where, e.author.hex(), e.seq, e.prev.hex(), last_seq, log.last.id.hex()))
            log.broken = True
        elif e.seq > last_seq + 1:
            self.fail("gap", "%s: %s: seq %d follows seq %d: entries %d to %d are missing" % (
                where, e.author.hex(), e.seq, last_seq, last_seq + 1, e.seq - 1))
            log.broken = True
        elif e.seq <= len(log.ids) and log.ids[e.seq - 1] != e.id:
            # SPEC 19.2: an equivocation is a second, different entry
            # *validly signed* for a seq already taken (and 5.3: both
            # verified). A badly signed one proves nothing beyond its
            # bad-signature finding, already reported.
            if not untrusted:
                self.equivocation(where, e)
            return
        else:
            self.fail("reordered", "%s: %s seq %d comes after seq %d: the log is out of order" % (
                where, e.author.hex(), e.seq, last_seq))
            log.broken = True
            return
        if e.seq == len(log.ids) + 1:
            log.ids.append(e.id)
        log.last = e
        if untrusted:
            log.broken = True
        if not log.broken and e.kind in MEMBERSHIP_KINDS:
            self.membership.append((index, e))
        if not log.broken and self.checkpoints.get(e.author):
            if len(log.leaves) + 1 == e.seq:
                log.leaves.append(leaf_hash(e.id))
                root = None
                for (size, croot) in self.checkpoints[e.author]:
                    if size != len(log.leaves):
                        continue
                    if root is None:
                        root = merkle_root(log.leaves)
                    if root != croot:
                        self.flagged.add(e.author)
                        self.fail("checkpoint-conflict", "%s: %s signed a checkpoint of size %d whose root is not the root of its log" % (where, e.author.hex(), size))

    def equivocation(self, where, e):
        self.flagged.add(e.author)
        logged = self.logs[e.author].ids[e.seq - 1]
        self.fail("equivocation", "%s: %s signed two entries for seq %d: %s and %s" % (
            where, e.author.hex(), e.seq, logged.hex(), e.id.hex()), [self.raws[logged], e.raw])

    def finish(self):
        """SPEC 19.2: the membership of the file's membership entries, and
        every entry judged against it, once the whole file is read."""
        h = History(self.genesis, [e for _, e in self.membership])
        self.history = h
        where = {e.id: index for index, e in self.membership}
        kinds = {"unknown": "unknown-author", "outside": "outside", "past": "outside", "role": "role"}
        found = []
        for index, e in self.judged:
            verdict, why = h.judge(e.author, e.seq, e.kind, e.addressee, e.blocking, e.status)
            if verdict == "in":
                self.count_signals(e)
                continue
            if verdict == "past":
                why += " (more than %d past its end: nodes do not store it)" % OUTSIDE_SLACK
            related, notes = self.related(h, e, verdict)
            msg = "record %d: %s seq %d (%s): %s" % (index, e.author.hex(), e.seq, e.id.hex(), "; ".join([why] + notes))
            found.append((index, kinds[verdict], msg, [e.raw] + [r.raw for r in related]))
        for member, base, first, second in h.conflicts:
            msg = "record %d: %s voted for two amendments of version %d: %s and %s" % (
                where[second.id], member, base, first.id.hex(), second.id.hex())
            found.append((where[second.id], "conflicting-approval", msg, [first.raw, second.raw]))
        found.sort(key=lambda f: f[0])
        for _, kind, msg, evidence in found:
            self.fail(kind, msg, evidence)
        self.voids = sorted(h.voids.values(), key=lambda v: where[v[0].id])

    def count_signals(self, e):
        """SPEC 18's signals_by_type over the whole file (since 0): the
        signals of the additions the membership takes in and does not make
        void, each the entry its log holds for its seq (a second entry for
        a taken seq, an equivocation, counts for nothing)."""
        log = self.logs.get(e.author)
        if e.kind != "addition" or log is None or e.seq > len(log.ids) or log.ids[e.seq - 1] != e.id:
            return
        for s in e.payload.get("signals", []):
            self.signals_by_type[signal_type(s)] += 1

    def related(self, h, e, verdict):
        """The membership entries that show why e is not taken in (SPEC
        19.2), and notes for the message."""
        key = e.author
        if verdict == "unknown":
            def names(a):
                change = a["_oneof"]["change"]
                c = a[change]
                return (change == "admit" and c.get("author_key") == key) or (change == "revoke" and c.get("new_key") == key)
            out, notes = [], []
            for p, votes, needed in h.pending:
                if names(p.payload):
                    out.append(p)
                    notes.append("amendment %s (%s) would have made it a member's key but was approved by too few (%d of the %d votes needed)" % (
                        p.id.hex(), describe(p.payload), len(votes), needed))
            for vid in sorted(h.voids):
                v, why = h.voids[vid]
                if v.kind == "amendment" and names(v.payload):
                    out.append(v)
                    notes.append("amendment %s would have made it a member's key but did not pass: %s" % (v.id.hex(), why))
            return out, notes
        ks = h.keys[key]
        if verdict in ("outside", "past"):
            if ks.why == "rotated":
                return [r for r in h.logs.get(key, []) if r.seq == ks.end and r.kind == "rotation"], []

            def cuts(a):
                change = a["_oneof"]["change"]
                c = a[change]
                return change in ("revoke", "remove") and c["member"] == ks.member and (ks.why == "replaced" or c["key"] == key)
            return self.passed(h, cuts), []

        def roles(a):
            change = a["_oneof"]["change"]
            return change == "role" and a[change]["member"] == ks.member
        return self.passed(h, roles), []

    @staticmethod
    def passed(h, match):
        """The passed amendments (in version order) match holds for, each
        followed by the other ballots counted for it."""
        out = []
        for v in h.versions:
            if match(v.proposal.payload):
                out.append(v.proposal)
                out.extend(b for b in v.votes if b.id != v.proposal.id)
        return out

    def add_evidence(self, e, where):
        self.evidence += 1
        log = self.logs.get(e.author)
        if log is None or e.seq > len(log.ids):
            self.fail("malformed", "%s: evidence for %s seq %d, which the file's log does not hold" % (where, e.author.hex(), e.seq))
            return
        if log.ids[e.seq - 1] == e.id:
            self.fail("malformed", "%s: evidence record repeats the logged entry %s" % (where, e.id.hex()))
            return
        self.equivocation(where, e)


def audit(data, genesis_path):
    """Returns the result dict, or raises FileDamage/ValueError/OSError for
    a file or genesis that cannot be read (exit 2)."""
    if data[:len(MAGIC)] != MAGIC:
        raise FileDamage("offset 0: not a Staydown export (want the line %r)" % MAGIC[:-1].decode())
    r = ExportReader(data)
    r.pos = len(MAGIC)
    r.sha.update(MAGIC)
    kind, header, _, off = r.next_record()
    if kind != "header":
        raise FileDamage("offset %d: the first record is not the header" % off)
    if header["version"] != 1:
        raise FileDamage("offset %d: export version %d, want 1" % (off, header["version"]))
    federation = header["federation"]
    fed_ok = 1 <= len(federation) <= 64 and all(c in "abcdefghijklmnopqrstuvwxyz0123456789-_." for c in federation)
    if not fed_ok:
        raise FileDamage("the header's federation %r is not a valid federation name" % federation)
    genesis = load_genesis(genesis_path, federation)
    a = Auditor(genesis)
    a.header(header)
    n_entries = n_evidence = n_checkpoints = 0
    while True:
        try:
            kind, value, index, off = r.next_record()
        except FileDamage as err:
            a.fail("file", str(err))
            break
        if kind == "checkpoint":
            if n_entries + n_evidence > 0:
                a.fail("file", "offset %d: a checkpoint record after entries" % off)
                break
            n_checkpoints += 1
            a.checkpoint(value, index)
        elif kind == "entry":
            if n_evidence > 0:
                a.fail("file", "offset %d: an entry record after evidence records" % off)
                break
            n_entries += 1
            a.add("entry", value, index)
        elif kind == "evidence":
            n_evidence += 1
            a.add("evidence", value, index)
        elif kind == "trailer":
            if value["entries"] != n_entries or value["evidence"] != n_evidence or value["checkpoints"] != n_checkpoints:
                a.fail("file", "offset %d: the trailer counts %d entries, %d evidence and %d checkpoints, the file holds %d, %d and %d (records removed or added)" % (
                    off, value["entries"], value["evidence"], value["checkpoints"], n_entries, n_evidence, n_checkpoints))
            elif value["sha256"] != r.sha.digest():
                a.fail("file", "offset %d: the trailer's SHA-256 %s does not match the file's %s (bytes were changed)" % (
                    off, value["sha256"].hex(), r.sha.hexdigest()))
            elif r.pos != len(data):
                a.fail("file", "offset %d: bytes after the trailer" % r.pos)
            break
        elif kind == "header":
            a.fail("file", "offset %d: a second header" % off)
            break
        else:
            a.fail("file", "offset %d: an empty or unknown record" % off)
            break
    a.finish()
    h = a.history
    return {
        "ok": not a.violations,
        "entries": a.entries,
        "logs": len(a.logs),
        "evidence": a.evidence,
        "genesis": genesis.hash.hex(),
        "header_genesis": a.header_genesis,
        "version": h.version,
        "violations": a.violations,
        "void_membership": [{"entry": e.id.hex(), "author": h.name_of(e.author), "seq": e.seq, "reason": why} for e, why in a.voids],
        "flagged": sorted(h.name_of(k) for k in a.flagged),
        "signals_by_type": a.signals_by_type,
    }


def main(argv):
    ap = argparse.ArgumentParser(description="Verify a Staydown export file offline (SPEC.md section 19).")
    ap.add_argument("file")
    ap.add_argument("--genesis", "--roster", dest="genesis", required=True,
                    help="the federation's genesis file (TOML: its first roster and [voting]); --roster is another name")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    try:
        with open(args.file, "rb") as f:
            data = f.read()
        res = audit(data, args.genesis)
    except (OSError, ValueError, FileDamage, tomllib.TOMLDecodeError) as err:
        sys.stderr.write("staydown_verify: %s\n" % err)
        return 2
    except Exception as err:  # a bug here: never let it pass for exit 1
        sys.stderr.write("staydown_verify: internal error: %r\n" % err)
        return 2
    if args.json:
        out = {k: res[k] for k in ("ok", "entries", "logs", "evidence", "genesis", "header_genesis", "version", "violations", "void_membership", "signals_by_type")}
        print(json.dumps(out, indent=2))
    else:
        print("Verified %s: %d entries in %d logs, %d evidence records." % (args.file, res["entries"], res["logs"], res["evidence"]))
        print("Membership: genesis %s; roster version %d in force." % (res["genesis"], res["version"]))
        if res["header_genesis"] == "absent":
            print("Note: the export's header carries no genesis.")
        if res["ok"]:
            print("Everything holds.")
        else:
            print("%d violations:" % len(res["violations"]))
            for i, v in enumerate(res["violations"], 1):
                print("%d. [%s] %s" % (i, v["kind"], v["message"]))
        if res["void_membership"]:
            print("%d membership entries without effect (not violations):" % len(res["void_membership"]))
            for i, v in enumerate(res["void_membership"], 1):
                print("%d. %s by %s, seq %d: %s" % (i, v["entry"], v["author"], v["seq"], v["reason"]))
        for name in res["flagged"]:
            print("Flagged: %s signed two entries for one position of its log." % name)
        print("Signals by type: " + ", ".join("%s %d" % (t, n) for t, n in res["signals_by_type"].items()))
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
