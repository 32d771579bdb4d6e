package e2ee

import (
	"encoding/base64"
	"encoding/json"
)

// AppendJSON appends the envelope's JSON form to dst: the bytes
// json.Marshal(e) gives (TestAppendJSONIsMarshal holds the two equal), written
// directly. encoding/json spends most of an envelope's encoding on
// reflection and on checking, byte by byte, whether the base64url text of
// its keys needs escaping, which it never does.
func (e *Envelope) AppendJSON(dst []byte) []byte {
	dst = grow(dst, e.jsonSize())
	dst = append(dst, `{"v":`...)
	dst = appendInt(dst, int64(e.Version))
	dst = append(dst, `,"suite":{"kem":`...)
	dst = appendUint(dst, uint64(e.Suite.KEM))
	dst = append(dst, `,"kdf":`...)
	dst = appendUint(dst, uint64(e.Suite.KDF))
	dst = append(dst, `,"aead":`...)
	dst = appendUint(dst, uint64(e.Suite.AEAD))
	dst = append(dst, `},"thread_id":`...)
	dst = appendString(dst, e.ThreadID)
	dst = append(dst, `,"sender_device_id":`...)
	dst = appendString(dst, e.SenderDevice)
	dst = append(dst, `,"sender_seq":`...)
	dst = appendUint(dst, e.SenderSeq)
	dst = append(dst, `,"nonce":`...)
	dst = appendBytes(dst, e.Nonce)
	dst = append(dst, `,"ciphertext":`...)
	dst = appendBytes(dst, e.Ciphertext)
	if len(e.Attachments) > 0 {
		dst = append(dst, `,"attachments":[`...)
		for i, id := range e.Attachments {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, id)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"recipients":`...)
	if e.Recipients == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i := range e.Recipients {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = e.Recipients[i].appendJSON(dst)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"record":`...)
	dst = e.Record.appendJSON(dst)
	dst = append(dst, `,"signature":`...)
	dst = appendBytes(dst, e.Signature)
	return append(dst, '}')
}

func (w *Wrap) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, w.ID)
	dst = append(dst, `,"enc":`...)
	dst = appendBytes(dst, w.Enc)
	dst = append(dst, `,"wrapped_key":`...)
	dst = appendBytes(dst, w.WrappedKey)
	return append(dst, '}')
}

// jsonSize bounds the length of AppendJSON's output when no string needs
// escaping (every envelope Check accepts), so that it is written into one
// allocation.
func (e *Envelope) jsonSize() int {
	const fixed = 240 // names, punctuation and numbers
	n := fixed + len(e.ThreadID) + len(e.SenderDevice) + b64Len(e.Nonce) + b64Len(e.Ciphertext) + b64Len(e.Signature) +
		e.Record.jsonSize()
	for _, id := range e.Attachments {
		n += len(id) + 3
	}
	for i := range e.Recipients {
		n += e.Recipients[i].jsonSize() + 1
	}
	return n
}

func (w *Wrap) jsonSize() int { return 40 + len(w.ID) + b64Len(w.Enc) + b64Len(w.WrappedKey) }

func b64Len(b []byte) int { return base64.RawURLEncoding.EncodedLen(len(b)) }

// grow makes room for n more bytes in dst.
func grow(dst []byte, n int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst
	}
	out := make([]byte, len(dst), len(dst)+n)
	copy(out, dst)
	return out
}

// appendBytes appends b as a JSON string of unpadded base64url.
func appendBytes(dst, b []byte) []byte {
	dst = append(dst, '"')
	n := len(dst)
	dst = grow(dst, b64Len(b)+1)[:n+b64Len(b)]
	base64.RawURLEncoding.Encode(dst[n:], b)
	return append(dst, '"')
}

// appendString appends s as a JSON string, escaped as encoding/json
// escapes it: as it is when every byte is printable ASCII that needs no
// escape (every id an envelope Check accepts), else by encoding/json.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string: cannot fail
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendUint appends v in decimal.
func appendUint(dst []byte, v uint64) []byte {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return append(dst, b[i:]...)
		}
	}
}

// appendInt appends v in decimal.
func appendInt(dst []byte, v int64) []byte {
	if v < 0 {
		return appendUint(append(dst, '-'), uint64(-v)) // -v of the smallest int64 is itself, whose uint64 is its magnitude
	}
	return appendUint(dst, uint64(v))
}
