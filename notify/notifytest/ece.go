package notifytest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Decrypt opens an RFC 8291 Web Push message body (RFC 8188 aes128gcm
// content coding) for the user agent holding priv and authSecret:
//
//	salt(16) | rs(4) | idlen(1) | keyid = sender public key(65) | records
//
// Each record is AES-128-GCM(plaintext | delimiter | zero padding), the
// delimiter 0x02 in the last record and 0x01 in the others.
func Decrypt(priv *ecdh.PrivateKey, authSecret, body []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("aes128gcm: body shorter than its header")
	}
	salt := body[:16]
	rs := binary.BigEndian.Uint32(body[16:20])
	idlen := int(body[20])
	if rs < 18 {
		return nil, fmt.Errorf("aes128gcm: record size %d below 18", rs)
	}
	if idlen != 65 || len(body) < 21+idlen {
		return nil, errors.New("aes128gcm: keyid is not a 65-byte P-256 public key")
	}
	senderPub, err := ecdh.P256().NewPublicKey(body[21 : 21+idlen])
	if err != nil {
		return nil, fmt.Errorf("aes128gcm: sender key: %w", err)
	}
	records := body[21+idlen:]
	if len(records) == 0 {
		return nil, errors.New("aes128gcm: no records")
	}

	shared, err := priv.ECDH(senderPub)
	if err != nil {
		return nil, fmt.Errorf("aes128gcm: ecdh: %w", err)
	}
	// RFC 8291 §3.3: key_info = "WebPush: info" 0x00 ua_public as_public.
	info := "WebPush: info\x00" + string(priv.PublicKey().Bytes()) + string(senderPub.Bytes())
	ikm, err := hkdf.Key(sha256.New, shared, authSecret, info, 32)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	baseNonce, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}

	var out []byte
	for seq := uint64(0); len(records) > 0; seq++ {
		n := min(int(rs), len(records))
		rec := records[:n]
		records = records[n:]
		last := len(records) == 0

		nonce := make([]byte, 12)
		copy(nonce, baseNonce)
		var s [8]byte
		binary.BigEndian.PutUint64(s[:], seq)
		for i := range s {
			nonce[4+i] ^= s[i]
		}
		plain, err := gcm.Open(nil, nonce, rec, nil)
		if err != nil {
			return nil, fmt.Errorf("aes128gcm: record %d: %w", seq, err)
		}
		i := len(plain) - 1
		for i >= 0 && plain[i] == 0 {
			i--
		}
		if i < 0 {
			return nil, fmt.Errorf("aes128gcm: record %d has no padding delimiter", seq)
		}
		want := byte(1)
		if last {
			want = 2
		}
		if plain[i] != want {
			return nil, fmt.Errorf("aes128gcm: record %d delimiter is %#x, want %#x", seq, plain[i], want)
		}
		out = append(out, plain[:i]...)
	}
	return out, nil
}
