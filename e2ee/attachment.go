package e2ee

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Encrypted attachments (docs/e2ee.md, "Attachments"). A file is encrypted
// on the sender's device under a fresh key of its own, uploaded as
// ciphertext, and referenced from the sealed content of a version 2
// envelope, which carries the key, both digests, the name, the type and the
// size: the server stores and checks the ciphertext only, and never learns
// the file's name or type.

// Limits of a file reference.
const (
	FileKeySize  = 32        // an attachment's AES-256-GCM key
	FileOverhead = 12 + 16   // the nonce before the ciphertext and the tag after it
	MaxFileName  = 255       // bytes of UTF-8
	MaxFileType  = 127       // bytes of a media type
	MaxFileSize  = 100 << 20 // a plaintext file
	// EncryptedType is the Content-Type an encrypted attachment is
	// uploaded and downloaded with.
	EncryptedType = "application/vnd.tend.encrypted"
)

// Errors of DecryptFile, each shown plainly by a client.
var (
	// ErrFileSwapped: the downloaded ciphertext is not the one the sender
	// referenced (its SHA-256 differs): swapped or altered on the server.
	ErrFileSwapped = errors.New("e2ee: the attachment's ciphertext is not the one the sender sent")
	// ErrFileDecrypt: the ciphertext does not decrypt with the key and
	// associated data (moved to another thread or sender), or the result is
	// not the file the sender described.
	ErrFileDecrypt = errors.New("e2ee: the attachment does not decrypt to the file the sender sent")
)

// Content is what a version 2 envelope seals: the message's text and its
// attachments. Its JSON form is the wire format (docs/e2ee.md).
type Content struct {
	Text        string    `json:"text"`
	Attachments []FileRef `json:"attachments"`
}

// FileRef is one encrypted attachment as the sealed content references it.
type FileRef struct {
	ID              string `json:"id"`               // the attachment's id, as the upload answered it
	Key             Bytes  `json:"key"`              // the file's own AES-256-GCM key (32 bytes)
	SHA256          string `json:"sha256"`           // hex SHA-256 of the uploaded ciphertext (the server's sha256)
	PlaintextSHA256 string `json:"plaintext_sha256"` // hex SHA-256 of the file
	Name            string `json:"name"`             // the file's name, hidden from the server
	Type            string `json:"type"`             // its media type, hidden from the server
	Size            int64  `json:"size"`             // its length in bytes
}

// fileAAD binds an attachment's ciphertext to its thread, its sender device,
// and the type and size the sealed content states for it.
func fileAAD(threadID, senderDevice, typ string, size int64) []byte {
	b := appendField(nil, []byte(fileLabel))
	b = appendField(b, []byte(threadID))
	b = appendField(b, []byte(senderDevice))
	b = appendField(b, []byte(typ))
	return appendUint64(b, uint64(size))
}

// EncryptFile encrypts a file for thread threadID, sent from senderDevice,
// under a fresh key. It returns the bytes to upload (Content-Type
// EncryptedType) and the reference to seal, whose ID the caller sets to the
// id the upload answers.
func EncryptFile(threadID, senderDevice, name, typ string, file []byte) ([]byte, FileRef, error) {
	key := make([]byte, FileKeySize)
	nonce := make([]byte, NonceSize)
	rand.Read(key)
	rand.Read(nonce)
	return encryptFileWith(threadID, senderDevice, name, typ, file, key, nonce)
}

// encryptFileWith is EncryptFile with the key and nonce given (the vectors).
func encryptFileWith(threadID, senderDevice, name, typ string, file, key, nonce []byte) ([]byte, FileRef, error) {
	ref := FileRef{Key: key, Name: name, Type: typ, Size: int64(len(file))}
	if err := ref.checkDescription(); err != nil {
		return nil, FileRef{}, err
	}
	gcm, err := newGCM(key)
	if err != nil {
		return nil, FileRef{}, err
	}
	ct := gcm.Seal(append([]byte(nil), nonce...), nonce, file, fileAAD(threadID, senderDevice, typ, ref.Size))
	pt, cs := sha256.Sum256(file), sha256.Sum256(ct)
	ref.PlaintextSHA256, ref.SHA256 = hex.EncodeToString(pt[:]), hex.EncodeToString(cs[:])
	return ct, ref, nil
}

// DecryptFile checks a downloaded ciphertext against ref (its SHA-256 first),
// decrypts it with the thread and sender device of the envelope that
// referenced it, and checks the file's size and SHA-256.
func DecryptFile(e *Envelope, ref FileRef, ciphertext []byte) ([]byte, error) {
	sum := sha256.Sum256(ciphertext)
	want, err := hex.DecodeString(ref.SHA256)
	if err != nil || subtle.ConstantTimeCompare(sum[:], want) != 1 {
		return nil, ErrFileSwapped
	}
	if len(ciphertext) < FileOverhead || len(ref.Key) != FileKeySize {
		return nil, ErrFileDecrypt
	}
	gcm, err := newGCM(ref.Key)
	if err != nil {
		return nil, ErrFileDecrypt
	}
	file, err := gcm.Open(nil, ciphertext[:NonceSize], ciphertext[NonceSize:],
		fileAAD(e.ThreadID, e.SenderDevice, ref.Type, ref.Size))
	if err != nil {
		return nil, ErrFileDecrypt
	}
	ps := sha256.Sum256(file)
	if int64(len(file)) != ref.Size || hex.EncodeToString(ps[:]) != ref.PlaintextSHA256 {
		return nil, ErrFileDecrypt
	}
	return file, nil
}

// checkDescription checks the parts of a reference the sender describes.
func (r FileRef) checkDescription() error {
	switch {
	case len(r.Name) == 0 || len(r.Name) > MaxFileName || !validUTF8(r.Name):
		return fieldErr("name", "must be 1 to %d bytes of UTF-8", MaxFileName)
	case len(r.Type) == 0 || len(r.Type) > MaxFileType || !isPrintableASCII(r.Type):
		return fieldErr("type", "must be a media type of 1 to %d printable ASCII characters", MaxFileType)
	case r.Size < 0 || r.Size > MaxFileSize:
		return fieldErr("size", "must be 0 to %d bytes", MaxFileSize)
	}
	return nil
}

// check checks a whole reference as sealed.
func (r FileRef) check() error {
	if !IsID(r.ID) {
		return fieldErr("id", "must be a lowercase UUID")
	}
	if len(r.Key) != FileKeySize {
		return fieldErr("key", "must be %d bytes", FileKeySize)
	}
	if !isHexDigest(r.SHA256) || !isHexDigest(r.PlaintextSHA256) {
		return fieldErr("sha256", "digests must be 64 lowercase hex digits")
	}
	return r.checkDescription()
}

// encodeContent is the sealed content of a version 2 envelope, and the
// attachment ids the envelope lists.
func encodeContent(text string, refs []FileRef) ([]byte, []string, error) {
	if len(refs) > MaxAttachments {
		return nil, nil, fieldErr("attachments", "at most %d per message", MaxAttachments)
	}
	ids := make([]string, len(refs))
	for i, r := range refs {
		if err := r.check(); err != nil {
			var fe *FieldError
			if errors.As(err, &fe) {
				fe.Field = fmt.Sprintf("attachments[%d].%s", i, fe.Field)
			}
			return nil, nil, err
		}
		ids[i] = r.ID
	}
	b, err := json.Marshal(Content{Text: text, Attachments: refs})
	if err != nil {
		return nil, nil, fmt.Errorf("content: %w", err)
	}
	return b, ids, nil
}

// decodeContent parses a version 2 content and checks that its attachments
// are well formed and are, in order, the ones the envelope lists.
func decodeContent(pt []byte, ids []string) (*Content, error) {
	var c Content
	if err := json.Unmarshal(pt, &c); err != nil || !validUTF8(c.Text) || len(c.Attachments) != len(ids) {
		return nil, ErrBadContent
	}
	for i, r := range c.Attachments {
		if r.ID != ids[i] || r.check() != nil {
			return nil, ErrBadContent
		}
	}
	if c.Attachments == nil {
		c.Attachments = []FileRef{}
	}
	return &c, nil
}

func isHexDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !isLowerHex(c) {
			return false
		}
	}
	return true
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// validUTF8 reports whether s is valid UTF-8 (nothing to drop).
func validUTF8(s string) bool { return strings.ToValidUTF8(s, "") == s }
