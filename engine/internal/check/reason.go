package check

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxReasonLen bounds the reason an admin gives for erasing a patient or
// restricting the processing of their data.
const MaxReasonLen = 1000

// Reason checks such a reason: required, valid UTF-8, at most MaxReasonLen
// characters; the error names field.
func Reason(field, reason string) error {
	switch {
	case strings.TrimSpace(reason) == "":
		return FieldError(field, "is required: say why (the audit entry keeps its length and SHA-256, not its text)")
	case !utf8.ValidString(reason):
		return FieldError(field, "is not valid UTF-8")
	case utf8.RuneCountInString(reason) > MaxReasonLen:
		return FieldError(field, fmt.Sprintf("is longer than %d characters", MaxReasonLen))
	}
	return nil
}

// ReasonDetail is what an audit entry keeps of a reason: its length and
// SHA-256, so the organisation can match the entry with the request it keeps
// on file, while the audit chain — which is never edited — holds no text
// that could be health information.
func ReasonDetail(reason string) map[string]any {
	sum := sha256.Sum256([]byte(reason))
	return map[string]any{"reason_sha256": hex.EncodeToString(sum[:]), "reason_length": utf8.RuneCountInString(reason)}
}
