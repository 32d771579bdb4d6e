package messaging

import (
	"errors"
	"testing"
)

// TestSniff: the four accepted types by their magic bytes, everything else
// refused, and a declared type must agree with the bytes.
func TestSniff(t *testing.T) {
	heic := []byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic....")
	mif1 := []byte("\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heix....")
	avif := []byte("\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf....")
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"jpeg", []byte("\xff\xd8\xff\xe0\x00\x10JFIF"), TypeJPEG},
		{"png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), TypePNG},
		{"pdf", []byte("%PDF-1.4\n"), TypePDF},
		{"heic", heic, TypeHEIC},
		{"heif with a heic brand", mif1, TypeHEIC},
		{"avif", avif, ""},
		{"exe", []byte("MZ\x90\x00"), ""},
		{"html", []byte("<!doctype html><script>"), ""},
		{"svg", []byte("<svg xmlns='http://www.w3.org/2000/svg'/>"), ""},
		{"gif", []byte("GIF89a"), ""},
		{"short", []byte("\xff\xd8"), ""},
		{"empty", nil, ""},
		{"ftyp box longer than the data", []byte("\x00\x00\x10\x00ftypmif1\x00\x00\x00\x00heic"), ""},
	} {
		if got := Sniff(tc.data); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	for _, tc := range []struct {
		declared string
		data     []byte
		ok       bool
	}{
		{"image/png", []byte("\x89PNG\r\n\x1a\n"), true},
		{"IMAGE/PNG; charset=binary", []byte("\x89PNG\r\n\x1a\n"), true},
		{"image/jpeg", []byte("\x89PNG\r\n\x1a\n"), false},
		{"", []byte("\x89PNG\r\n\x1a\n"), false},
		{"image/heif", heic, true},
		{"application/pdf", heic, false},
		{"image/png", []byte("MZ"), false},
	} {
		_, err := CheckAttachmentType(tc.declared, tc.data)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrUnsupportedType)) {
			t.Errorf("%q with %q: %v", tc.declared, tc.data, err)
		}
	}
}

// FuzzSniff: sniffing never panics and only ever answers an accepted type.
func FuzzSniff(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic"))
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Add([]byte("\x00\x00\x00\x14ftypisom\x00\x00\x00\x00isom\x00\x00\x00\x08moov"))
	f.Add([]byte("OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x13OpusHead"))
	f.Add([]byte("\x1a\x45\xdf\xa3\x84\x42\x82\x84webm"))
	f.Add([]byte("ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x64"))
	f.Fuzz(func(t *testing.T, data []byte) {
		switch Sniff(data) {
		case "", TypeJPEG, TypePNG, TypeHEIC, TypePDF, TypeM4A, TypeOgg, TypeMP3, TypeMP4, TypeWebM:
		default:
			t.Fatalf("Sniff answered an unknown type for %q", data)
		}
	})
}
