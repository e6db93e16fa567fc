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
    },
    "Signal": {
        1: ("multihash", "bytes", False, "value"),
        2: ("pdq", "bytes", False, "value"),
        3: ("url", "string", False, "value"),
        4: ("account", "Account", False, "value"),
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
    },
    "Dispute": {
        1: ("target", "bytes", False, None),
        2: ("reason", "string", False, None),
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
}

PAYLOAD_KINDS = {
    "addition": "addition",
    "retraction": "retraction",
    "dispute": "dispute",
    "allow": "allow",
    "notice": "notice",
    "notice_update": "notice-update",
    "notice_reply": "notice-reply",
}


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


def check_entry(e):
    """SPEC 5.1 and 6. Returns the payload's kind."""
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
        if not 1 <= status <= 6:
            raise Malformed("notice_reply.status %d" % status)
        if status == 5 and not 1 <= reason <= 4:
            raise Malformed("notice_reply.reason: not-executed needs a reason 1 to 4")
        if status != 5 and reason != 0:
            raise Malformed("notice_reply.reason: only a not-executed reply has a reason")
        if p.get("action_time_ms", 0) < 0:
            raise Malformed("notice_reply.action_time_ms negative")
        check_text("notice_reply.text", p.get("text", ""), 4096, False)
    return PAYLOAD_KINDS[member]


# ---------------------------------------------------------------------------
# URL normal form, SPEC 7.4 (after Go's net/url, as SPEC 7.4 and 17 say).

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
                 "federation", "kind", "addressee")


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
    return e


def verify_signature(e):
    try:
        Ed25519PublicKey.from_public_bytes(e.author).verify(e.sig, SIG_CONTEXT + e.signed)
        return True
    except (InvalidSignature, ValueError):
        return False


# ---------------------------------------------------------------------------
# Roster (SPEC 12) and role rules (SPEC 9.1).

MAY_WRITE = {
    "referral": {"addition", "retraction", "dispute", "allow", "notice", "notice-update"},
    "platform": {"addition", "retraction", "dispute", "allow", "notice-reply"},
    "auditor": set(),
}


def load_roster(path):
    """Returns {author key bytes: (name, role)}; raises ValueError."""
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    extra = set(doc) - {"member"}
    if extra:
        raise ValueError("%s: unexpected keys %s: a roster holds [[member]] blocks only" % (path, sorted(extra)))
    blocks = doc.get("member", [])
    if not isinstance(blocks, list) or not blocks:
        raise ValueError("%s: no members" % path)
    members, names, peers = {}, set(), set()
    for i, b in enumerate(blocks, 1):
        if not isinstance(b, dict):
            raise ValueError("%s: member %d is not a table" % (path, i))
        unknown = set(b) - {"name", "role", "author_key", "peer_id", "addrs"}
        if unknown:
            raise ValueError("%s: member %d: unknown keys %s" % (path, i, sorted(unknown)))
        for k in ("name", "role", "author_key", "peer_id"):
            if not isinstance(b.get(k), str) or not b[k]:
                raise ValueError("%s: member %d: %s is required" % (path, i, k))
        if b["role"] not in MAY_WRITE:
            raise ValueError("%s: member %d: unknown role %r" % (path, i, b["role"]))
        ak = b["author_key"]
        if len(ak) != 64:
            raise ValueError("%s: member %d: author_key: want 64 hex characters" % (path, i))
        key = bytes.fromhex(ak)
        if key == bytes(32):
            raise ValueError("%s: member %d: author key is all zeros" % (path, i))
        if b["name"] in names or key in members or b["peer_id"] in peers:
            raise ValueError("%s: member %d: duplicate name, author key or peer ID" % (path, i))
        names.add(b["name"])
        peers.add(b["peer_id"])
        members[key] = (b["name"], b["role"])
    return members


def roster_check(members, federation, e):
    """SPEC 9.1. Returns None or (kind, message)."""
    if e.federation != federation:
        return ("wrong-federation", "entry %s is for %r, the file's federation is %r" % (e.id.hex(), e.federation, federation))
    m = members.get(e.author)
    if m is None:
        return ("unknown-author", "entry %s: author %s is not in the roster" % (e.id.hex(), e.author.hex()))
    name, role = m
    if e.kind not in MAY_WRITE[role]:
        return ("role", "entry %s: %s (%s) may not write a %s" % (e.id.hex(), name, role, e.kind))
    if e.kind == "notice":
        to = members.get(e.addressee)
        if to is None or to[1] != "platform":
            return ("role", "notice %s is addressed to %s, not a platform of the roster" % (e.id.hex(), e.addressee.hex()))
    return None


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
        h = {"version": 0, "federation": "", "exporter": ""}
        for num, wt, v in fields:
            if num == 1 and wt == 0:
                h["version"] = v & 0xFFFFFFFF
            elif num in (2, 4) and wt == 2:
                try:
                    h["federation" if num == 2 else "exporter"] = v.decode("utf-8")
                except UnicodeDecodeError:
                    raise Malformed("header string is not UTF-8")
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
    def __init__(self, members, federation):
        self.members = members
        self.federation = federation
        self.logs = {}
        self.current = None
        self.violations = []
        self.entries = 0
        self.evidence = 0
        self.flagged = set()
        self.checkpoints = {}  # author -> [(size, root)]

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

    def fail(self, kind, message):
        self.violations.append({"kind": kind, "message": message})

    def add(self, rec_kind, raw, index):
        where = "record %d" % index
        try:
            e = decode_signed_entry(raw)
        except Malformed as err:
            self.fail("malformed", "%s: malformed entry: %s" % (where, err))
            return
        suspect = untrusted = False
        if not verify_signature(e):
            self.fail("bad-signature", "%s: %s seq %d (%s): signature does not verify" % (where, e.author.hex(), e.seq, e.id.hex()))
            suspect = untrusted = True
        else:
            refusal = roster_check(self.members, self.federation, e)
            if refusal is not None:
                self.fail(refusal[0], "%s: %s" % (where, refusal[1]))
                if refusal[0] in ("unknown-author", "wrong-federation"):
                    return
                suspect = True
        if rec_kind == "evidence":
            if not suspect:
                self.add_evidence(e, where)
            return
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
            where, e.author.hex(), e.seq, logged.hex(), e.id.hex()))

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


def audit(data, roster_path):
    """Returns the result dict, or raises FileDamage/ValueError/OSError for
    a file or roster that cannot be read (exit 2)."""
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
    members = load_roster(roster_path)
    a = Auditor(members, federation)
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
    return {
        "ok": not a.violations,
        "entries": a.entries,
        "logs": len(a.logs),
        "evidence": a.evidence,
        "violations": a.violations,
        "flagged": sorted(members[k][0] if k in members else k.hex() for k in a.flagged),
    }


def main(argv):
    ap = argparse.ArgumentParser(description="Verify a Staydown export file offline (SPEC.md section 19).")
    ap.add_argument("file")
    ap.add_argument("--roster", required=True, help="the federation's roster file (TOML)")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    try:
        with open(args.file, "rb") as f:
            data = f.read()
        res = audit(data, args.roster)
    except (OSError, ValueError, FileDamage, tomllib.TOMLDecodeError) as err:
        sys.stderr.write("staydown_verify: %s\n" % err)
        return 2
    except Exception as err:  # a bug here: never let it pass for exit 1
        sys.stderr.write("staydown_verify: internal error: %r\n" % err)
        return 2
    if args.json:
        out = {k: res[k] for k in ("ok", "entries", "logs", "evidence", "violations")}
        print(json.dumps(out, indent=2))
    else:
        print("Verified %s: %d entries in %d logs, %d evidence records." % (args.file, res["entries"], res["logs"], res["evidence"]))
        if res["ok"]:
            print("Everything holds.")
        else:
            print("%d violations:" % len(res["violations"]))
            for i, v in enumerate(res["violations"], 1):
                print("%d. [%s] %s" % (i, v["kind"], v["message"]))
        for name in res["flagged"]:
            print("Flagged: %s signed two entries for one position of its log." % name)
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
