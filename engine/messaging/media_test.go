package messaging_test

import (
	"testing"

	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/engine/messaging"
)

// TestMediaSniff: each audio and video container is recognised from its
// bytes with its length where the container states it; near misses are not.
func TestMediaSniff(t *testing.T) {
	ogg := enginetest.OggOpus(1500)
	vorbis := append([]byte{}, ogg...)
	copy(vorbis[28:], "OpusHeax") // the first packet is no Opus header
	webmMatroska := enginetest.WebM(2500)
	copy(webmMatroska[bytesIndex(webmMatroska, "webm"):], "mkvx")
	for _, tc := range []struct {
		name   string
		data   []byte
		want   string
		length int64 // -1: none
	}{
		{"ogg opus", ogg, messaging.TypeOgg, 1500},
		{"ogg without an opus header", vorbis, "", -1},
		{"m4a", enginetest.MP4(4321, false), messaging.TypeM4A, 4321},
		{"mp4 with video", enginetest.MP4(60000, true), messaging.TypeMP4, 60000},
		{"webm", enginetest.WebM(2500), messaging.TypeWebM, 2500},
		{"matroska, not webm", webmMatroska, "", -1},
		{"mp3 with id3", enginetest.MP3(), messaging.TypeMP3, -1},
		{"mp3 frame sync", enginetest.MP3()[20:], messaging.TypeMP3, -1},
		{"mp3 layer I", []byte{0xFF, 0xFF, 0x90, 0x64, 0, 0}, "", -1},
		{"mp3 bad bit rate", []byte{0xFF, 0xFB, 0xF0, 0x64}, "", -1},
		{"id3 then nothing", []byte("ID3\x04\x00\x00\x00\x00\x00\x0a\x00\x00"), "", -1},
		{"ftyp of an unknown brand", []byte("\x00\x00\x00\x10ftypqt  \x00\x00\x00\x00"), "", -1},
		{"wav", []byte("RIFF\x24\x00\x00\x00WAVEfmt "), "", -1},
		{"ogg page header only", []byte("OggS\x00\x02"), "", -1},
	} {
		got := messaging.Sniff(tc.data)
		if got != tc.want {
			t.Errorf("%s: sniffed %q, want %q", tc.name, got, tc.want)
			continue
		}
		d := messaging.MediaDuration(got, tc.data)
		switch {
		case tc.length < 0 && d != nil:
			t.Errorf("%s: duration %d ms, want none", tc.name, *d)
		case tc.length >= 0 && (d == nil || *d != tc.length):
			t.Errorf("%s: duration %v, want %d ms", tc.name, d, tc.length)
		}
	}
	for _, tc := range []struct {
		declared string
		data     []byte
		ok       bool
	}{
		{"audio/ogg", ogg, true},
		{"audio/ogg; codecs=opus", ogg, true},
		{"video/mp4", ogg, false},
		{"audio/mp4", enginetest.MP4(1, false), true},
		{"audio/mp4", enginetest.MP4(1, true), false},
		{"video/webm", enginetest.WebM(1), true},
		{"audio/mpeg", enginetest.MP3(), true},
	} {
		if _, err := messaging.CheckAttachmentType(tc.declared, tc.data); (err == nil) != tc.ok {
			t.Errorf("%s declared %q: %v", tc.declared, tc.data[:8], err)
		}
	}
}

func bytesIndex(b []byte, s string) int {
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return i
		}
	}
	return -1
}

// FuzzMediaDuration: reading a container's length never panics, on any
// bytes claimed to be of any media type, and is never negative.
func FuzzMediaDuration(f *testing.F) {
	f.Add(enginetest.OggOpus(100))
	f.Add(enginetest.MP4(100, true))
	f.Add(enginetest.WebM(100))
	f.Add(enginetest.MP3())
	f.Fuzz(func(t *testing.T, data []byte) {
		typ := messaging.Sniff(data)
		for _, ty := range []string{messaging.TypeOgg, messaging.TypeM4A, messaging.TypeWebM, messaging.TypeMP3, typ} {
			if d := messaging.MediaDuration(ty, data); d != nil && *d < 0 {
				t.Fatalf("negative duration %d", *d)
			}
		}
	})
}
