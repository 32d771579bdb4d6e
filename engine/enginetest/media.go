package enginetest

import (
	"bytes"
	"encoding/binary"
	"math"
)

// Small, valid audio and video files built byte by byte, for tests of
// attachment sniffing, duration and playback.

// oggCRC is Ogg's page checksum: CRC-32 with polynomial 0x04C11DB7, not
// reflected, initial value 0.
var oggCRC = func() *[256]uint32 {
	var t [256]uint32
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04C11DB7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return &t
}()

// oggPage builds one Ogg page holding packets (each under 255 bytes).
func oggPage(flags byte, granule int64, seq uint32, packets ...[]byte) []byte {
	var b bytes.Buffer
	b.WriteString("OggS")
	b.WriteByte(0)
	b.WriteByte(flags)
	_ = binary.Write(&b, binary.LittleEndian, granule)
	_ = binary.Write(&b, binary.LittleEndian, uint32(0x7E4D)) // stream serial
	_ = binary.Write(&b, binary.LittleEndian, seq)
	_ = binary.Write(&b, binary.LittleEndian, uint32(0)) // checksum, set below
	b.WriteByte(byte(len(packets)))
	for _, p := range packets {
		b.WriteByte(byte(len(p)))
	}
	for _, p := range packets {
		b.Write(p)
	}
	page := b.Bytes()
	var crc uint32
	for _, c := range page {
		crc = crc<<8 ^ oggCRC[byte(crc>>24)^c]
	}
	binary.LittleEndian.PutUint32(page[22:26], crc)
	return page
}

// OggOpus returns an Ogg Opus file of ms milliseconds of silence (mono,
// 20 ms CELT frames of digital silence), which browsers decode and whose
// length is its last granule position.
func OggOpus(ms int) []byte {
	head := []byte("OpusHead")
	head = append(head, 1, 1) // version, channels
	head = binary.LittleEndian.AppendUint16(head, 312)
	head = binary.LittleEndian.AppendUint32(head, 48000)
	head = append(head, 0, 0, 0) // gain, mapping family
	tags := []byte("OpusTags")
	tags = binary.LittleEndian.AppendUint32(tags, 4)
	tags = append(tags, "tend"...)
	tags = binary.LittleEndian.AppendUint32(tags, 0)
	out := oggPage(0x02, 0, 0, head)
	out = append(out, oggPage(0, 0, 1, tags)...)
	frames := max(1, ms/20)
	silence := []byte{0xF8, 0xFF, 0xFE} // TOC: CELT fullband 20 ms, one frame
	var seq uint32 = 2
	for done := 0; done < frames; {
		n := min(50, frames-done)
		pkts := make([][]byte, n)
		for i := range pkts {
			pkts[i] = silence
		}
		done += n
		flags := byte(0)
		if done == frames {
			flags = 0x04
		}
		out = append(out, oggPage(flags, int64(312+done*960), seq, pkts...)...)
		seq++
	}
	return out
}

// box builds an ISO BMFF box.
func box(typ string, payload ...[]byte) []byte {
	body := bytes.Join(payload, nil)
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	return append(append(b, typ...), body...)
}

// MP4 returns the boxes of an MP4 (video true: a video and a sound track) or
// M4A (a sound track) file of ms milliseconds: ftyp, moov with mvhd and each
// track's handler, and an empty mdat. Enough to sniff and to read the
// length from; no samples.
func MP4(ms int, video bool) []byte {
	major := "M4A "
	if video {
		major = "isom"
	}
	ftyp := box("ftyp", []byte(major), []byte{0, 0, 2, 0}, []byte("isomiso2mp41"))
	mvhd := make([]byte, 100)
	binary.BigEndian.PutUint32(mvhd[12:], 1000) // timescale
	binary.BigEndian.PutUint32(mvhd[16:], uint32(ms))
	hdlr := func(kind string) []byte {
		p := make([]byte, 25)
		copy(p[8:], kind)
		return box("trak", box("mdia", box("hdlr", p)))
	}
	tracks := [][]byte{box("mvhd", mvhd), hdlr("soun")}
	if video {
		tracks = append(tracks, hdlr("vide"))
	}
	return bytes.Join([][]byte{ftyp, box("moov", tracks...), box("mdat", make([]byte, 16))}, nil)
}

// ebml builds an EBML element with a one-byte size (payload under 127).
func ebml(id []byte, payload ...[]byte) []byte {
	body := bytes.Join(payload, nil)
	if len(body) >= 127 {
		b := append([]byte{}, id...)
		b = append(b, 0x40|byte(len(body)>>8), byte(len(body)))
		return append(b, body...)
	}
	return append(append(append([]byte{}, id...), 0x80|byte(len(body))), body...)
}

// WebM returns the header of a WebM file of ms milliseconds: the EBML
// header (DocType webm) and a Segment of unknown size with its Info
// (TimecodeScale 1 ms, Duration). Enough to sniff and to read the length
// from; no clusters.
func WebM(ms int) []byte {
	header := ebml([]byte{0x1A, 0x45, 0xDF, 0xA3}, ebml([]byte{0x42, 0x86}, []byte{1}),
		ebml([]byte{0x42, 0x82}, []byte("webm")), ebml([]byte{0x42, 0x87}, []byte{4}))
	dur := binary.BigEndian.AppendUint64(nil, math.Float64bits(float64(ms)))
	info := ebml([]byte{0x15, 0x49, 0xA9, 0x66}, ebml([]byte{0x2A, 0xD7, 0xB1}, []byte{0x0F, 0x42, 0x40}),
		ebml([]byte{0x44, 0x89}, dur))
	segment := append([]byte{0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, info...)
	return append(header, segment...)
}

// MP3 returns an ID3v2 tag and a few MPEG-1 Layer III frame headers (128
// kbit/s, 44.1 kHz) with empty frames: enough to sniff.
func MP3() []byte {
	out := []byte("ID3\x04\x00\x00\x00\x00\x00\x0a")
	out = append(out, make([]byte, 10)...)
	for range 4 {
		frame := make([]byte, 417)
		copy(frame, []byte{0xFF, 0xFB, 0x90, 0x64})
		out = append(out, frame...)
	}
	return out
}
