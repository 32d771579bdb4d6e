package e2ee

import (
	"encoding/base64"
	"encoding/json"
	"errors"
)

// Bytes is binary data carried in JSON as unpadded base64url (RFC 4648 §5).
// Padding, the standard alphabet and white space are refused, so one value
// has exactly one spelling.
type Bytes []byte

// MarshalText spells b in unpadded base64url, which encoding/json writes as
// a string. (A text marshaler, not a JSON one: encoding/json re-scans what
// a JSON marshaler returns, which made encoding an envelope's keys cost
// several times their base64.)
func (b Bytes) MarshalText() ([]byte, error) {
	out := make([]byte, base64.RawURLEncoding.EncodedLen(len(b)))
	base64.RawURLEncoding.Encode(out, b)
	return out, nil
}

// UnmarshalJSON decodes an unpadded base64url string.
func (b *Bytes) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return errors.New("not a base64url string")
	}
	out, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return errors.New("not unpadded base64url")
	}
	*b = out
	return nil
}

// appendField appends a field as a 4-byte big-endian length and its bytes:
// the one framing every signed or bound byte string uses.
func appendField(dst, field []byte) []byte {
	n := len(field)
	dst = append(dst, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	return append(dst, field...)
}

// appendUint64 appends v as 8 big-endian bytes.
func appendUint64(dst []byte, v uint64) []byte {
	for i := 7; i >= 0; i-- {
		dst = append(dst, byte(v>>(8*i)))
	}
	return dst
}

// appendUint32 appends v as 4 big-endian bytes.
func appendUint32(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// appendUint16 appends v as 2 big-endian bytes.
func appendUint16(dst []byte, v uint16) []byte {
	return append(dst, byte(v>>8), byte(v))
}
