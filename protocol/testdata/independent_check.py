#!/usr/bin/env python3
# Usage: python3 protocol/testdata/independent_check.py protocol/testdata/vectors.json
# Needs Python 3 and the "cryptography" package (Debian: python3-cryptography).
# Run by go test (protocol/independent_check_test.go).
# Independent check of SPEC.md against protocol/testdata/vectors.json:
# re-encode each Entry from its field listing by the rules of SPEC 2.3,
# rebuild SignedEntry by 2.2, the id by 4, verify the signature by 3.
# Prints "ok NAME" for each vector that agrees and "FAIL NAME: ..." for
# each that does not; exits 1 if any does not (or none was checked).
import json, hashlib, re, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey, Ed25519PrivateKey

# message -> field name -> (number, type, submessage)
S = {
 'Entry': {'version':(1,'v'),'federation':(2,'s'),'author':(3,'b'),'seq':(4,'v'),'prev':(5,'b'),'timestamp_ms':(6,'v'),
   'addition':(10,'m','Addition',True),'retraction':(11,'m','Retraction',True),'dispute':(12,'m','Dispute',True),'allow':(13,'m','Allow',True),
   'notice':(14,'m','Notice',True),'notice_update':(15,'m','NoticeUpdate',True),'notice_reply':(16,'m','NoticeReply',True)},
 'Signal': {'multihash':(1,'b1'),'pdq':(2,'b1'),'url':(3,'s1'),'account':(4,'m','Account',True),'vpdq':(5,'b1'),'domain':(6,'m','Domain',True)},
 'Domain': {'name':(1,'s'),'subdomains':(2,'v')},
 'Account': {'service':(1,'s'),'id':(2,'s')},
 'Label': {'slug':(1,'s'),'text':(2,'s')},
 'Addition': {'signals':(1,'m','Signal',True),'labels':(2,'m','Label',True),'case_ref':(3,'s')},
 'Retraction': {'target':(1,'b'),'reason':(2,'s'),'signals':(3,'m','Signal',True)},
 'Dispute': {'target':(1,'b'),'reason':(2,'s'),'signals':(3,'m','Signal',True)},
 'Allow': {'signals':(1,'m','Signal',True),'category':(2,'s'),'reason':(3,'s')},
 'Sealed': {'recipients':(1,'m','Recipient',True),'nonce':(2,'b'),'ciphertext':(3,'b')},
 'Recipient': {'member':(1,'b'),'sealed_key':(2,'b')},
 'Notice': {'addressee':(1,'b'),'signals':(2,'m','Signal',True),'category':(3,'m','Label',True),'legal_basis':(4,'s'),'binding':(5,'v'),'deadline_ms':(6,'v'),'details':(7,'m','Sealed',True)},
 'NoticeUpdate': {'notice':(1,'b'),'withdraw':(2,'v'),'deadline_ms':(3,'v'),'details':(4,'m','Sealed',True)},
 'NoticeReply': {'notice':(1,'b'),'status':(2,'v'),'reason':(3,'v'),'text':(4,'s'),'action_time_ms':(5,'v')},
}
def varint(n):
    if n < 0: n += 1<<64
    out = bytearray()
    while True:
        b = n & 0x7f; n >>= 7
        if n: out.append(b|0x80)
        else: out.append(b); return bytes(out)
def parse(lines, i, indent):
    # returns list of (name, value) where value is str or list
    out = []
    while i < len(lines):
        l = lines[i]
        ind = len(l) - len(l.lstrip(' '))
        if ind < indent or l.strip() == '}': return out, i
        m = re.match(r'\s*(\w+) \((\d+)\)(?:: (.*)| \{)$', l)
        name, val = m.group(1), m.group(3)
        if val is None:
            sub, i = parse(lines, i+1, indent+2)
            out.append((name, sub)); i += 1  # skip '}'
        else:
            out.append((name, val)); i += 1
    return out, i
def encode(msg, fields):
    # fields in listing order, which is field-number order (checked)
    out = b''; last = 0
    for name, val in fields:
        spec = S[msg][name]; num, typ = spec[0], spec[1]
        if num < last: raise ValueError('%s.%s out of field-number order' % (msg, name))
        last = num
        if typ == 'm':
            body = encode(spec[2], val)
            out += varint(num<<3|2) + varint(len(body)) + body
        elif typ.startswith('b'):
            b = bytes.fromhex(val)
            if b or typ == 'b1': out += varint(num<<3|2) + varint(len(b)) + b
        elif typ.startswith('s'):
            s = json.loads(val).encode()  # Go %q of ASCII is JSON-compatible here
            if s or typ == 's1': out += varint(num<<3|2) + varint(len(s)) + s
        else:
            n = {'true':1,'false':0}.get(val)
            if n is None: n = int(val.split()[-1].strip('()')) if '(' in val else int(val)
            if n: out += varint(num<<3|0) + varint(n)
    return out

def check(f):
    """Checks every vector of f; returns the list of disagreements."""
    problems = []
    ctx = bytes.fromhex(f['signature_context_hex'])
    if ctx != b'staydown/v1/entry\n':
        problems.append('signature context %r is not SPEC 3\'s' % ctx)
    pubs = {}
    for k in f['keys']:
        priv = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(k['seed']))
        pub = priv.public_key().public_bytes_raw()
        if pub.hex() != k['public']:
            problems.append('key %s: public key differs from its seed\'s' % k['name'])
        pubs[k['name']] = (priv, pub)
    if not f['vectors']:
        problems.append('no vectors')
    for v in f['vectors']:
        name = v['name']
        try:
            fields, _ = parse(v['fields'].split('\n'), 0, 0)
            entry = encode('Entry', fields)
        except Exception as e:  # a listing this encoder cannot read is a disagreement too
            problems.append('%s: field listing: %r' % (name, e))
            continue
        if entry.hex() != v['entry']:
            problems.append('%s: entry re-encoding differs' % name)
            continue
        priv, pub = pubs[v['key']]
        sig = priv.sign(ctx + entry)
        if sig.hex() != v['signature']:
            problems.append('%s: signature differs' % name)
            continue
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, ctx + entry)
        se = b'\x0a' + varint(len(entry)) + entry + b'\x12\x40' + sig
        if se.hex() != v['signed_entry']:
            problems.append('%s: signed entry differs' % name)
            continue
        idb = b'\x12\x20' + hashlib.sha256(se).digest()
        if idb.hex() != v['id']:
            problems.append('%s: id differs' % name)
            continue
        print('ok', name)
    return problems

def main():
    if len(sys.argv) != 2:
        sys.exit('usage: independent_check.py VECTORS.json')
    with open(sys.argv[1]) as fh:
        f = json.load(fh)
    problems = check(f)
    for p in problems:
        print('FAIL', p)
    if problems:
        sys.exit(1)

if __name__ == '__main__':
    main()
