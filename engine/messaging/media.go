package messaging

import (
	"bytes"
	"encoding/binary"
	"math"
)

// The audio and video types an attachment may have, as sniffed from its
// bytes. They are stored as sent: never transcoded.
const (
	TypeM4A  = "audio/mp4"  // MPEG-4 audio (AAC, ALAC): an ISO BMFF file without a video track
	TypeOgg  = "audio/ogg"  // Ogg with Opus
	TypeMP3  = "audio/mpeg" // MPEG-1/2 Layer III, with or without an ID3v2 tag
	TypeMP4  = "video/mp4"  // an ISO BMFF file with a video track (H.264 and AAC, typically)
	TypeWebM = "video/webm" // Matroska with DocType webm (VP8/VP9/AV1, Opus/Vorbis)
)

// DefaultMediaMaxBytes is the default largest audio or video attachment:
// 50 MiB.
const DefaultMediaMaxBytes = 50 << 20

// IsMedia reports whether typ is an audio or video type, whose size limit is
// the media limit.
func IsMedia(typ string) bool {
	switch typ {
	case TypeM4A, TypeOgg, TypeMP3, TypeMP4, TypeWebM:
		return true
	}
	return false
}

// Bounds of the media parsers: how much of a file they look at. A file whose
// facts lie beyond them is still accepted if its type is recognised, with no
// duration.
const (
	maxBoxes    = 4096      // ISO BMFF boxes visited in all
	oggTail     = 64 << 10  // bytes at the end searched for the last Ogg page
	ebmlWindow  = 1 << 20   // bytes of a WebM file searched for its Info element
	maxEBMLElem = 4096      // EBML elements visited in all
	id3Max      = 256 << 10 // the largest ID3v2 tag skipped before an MP3 frame
)

// sniffMedia returns the audio or video type of data, or "".
func sniffMedia(data []byte) string {
	switch {
	case len(data) >= 12 && string(data[4:8]) == "ftyp":
		return sniffISO(data)
	case bytes.HasPrefix(data, []byte("OggS")):
		if _, ok := opusHead(data); ok {
			return TypeOgg
		}
	case bytes.HasPrefix(data, []byte{0x1A, 0x45, 0xDF, 0xA3}):
		if ebmlDocType(data) == "webm" {
			return TypeWebM
		}
	case isMP3(data):
		return TypeMP3
	}
	return ""
}

// MediaDuration returns the length in milliseconds of an audio or video file
// of type typ, read from its container where that is cheap (the MP4 movie
// header, the last Ogg page's granule position, the WebM Duration element),
// or nil (MP3, or a container that does not say).
func MediaDuration(typ string, data []byte) *int64 {
	var ms float64
	var ok bool
	switch typ {
	case TypeM4A, TypeMP4:
		ms, ok = mp4Duration(data)
	case TypeOgg:
		ms, ok = oggDuration(data)
	case TypeWebM:
		ms, ok = webmDuration(data)
	}
	if !ok || ms < 0 || ms > 366*24*3600*1000 || math.IsNaN(ms) {
		return nil
	}
	n := int64(math.Round(ms))
	return &n
}

// isoBrands: the major or compatible brands of the MP4 family accepted.
var isoBrands = map[string]bool{"isom": true, "iso2": true, "mp41": true, "mp42": true, "avc1": true, "M4A ": true,
	"M4V ": true, "dash": true}

// sniffISO reads an ISO BMFF file: a brand of the MP4 family, then the
// handlers of its tracks (a video track makes it video/mp4, sound alone
// audio/mp4). An M4A brand is audio/mp4 even before its tracks are found.
func sniffISO(data []byte) string {
	size := int(binary.BigEndian.Uint32(data))
	if size < 16 || size > len(data) || size > 4096 {
		return ""
	}
	major := string(data[8:12])
	brand := isoBrands[major]
	for i := 16; !brand && i+4 <= size; i += 4 {
		brand = isoBrands[string(data[i:i+4])]
	}
	if !brand {
		return ""
	}
	video, sound := false, false
	visits := 0
	walkBoxes(data, []string{"moov", "trak", "mdia", "hdlr"}, &visits, func(b []byte) {
		// hdlr: version+flags (4), pre_defined (4), handler_type (4).
		if len(b) >= 12 {
			switch string(b[8:12]) {
			case "vide":
				video = true
			case "soun":
				sound = true
			}
		}
	})
	switch {
	case video:
		return TypeMP4
	case sound || major == "M4A ":
		return TypeM4A
	}
	return ""
}

// walkBoxes calls fn with the payload of every box at path (a list of box
// types from the top level down) in data. It visits at most maxBoxes boxes
// in all (visits counts them) and never reads outside data.
func walkBoxes(data []byte, path []string, visits *int, fn func([]byte)) {
	for len(data) >= 8 && *visits < maxBoxes {
		*visits++
		size := uint64(binary.BigEndian.Uint32(data))
		typ := string(data[4:8])
		hdr := uint64(8)
		switch size {
		case 0: // to the end of the enclosing box
			size = uint64(len(data))
		case 1: // a 64-bit size follows
			if len(data) < 16 {
				return
			}
			size, hdr = binary.BigEndian.Uint64(data[8:16]), 16
		}
		if size < hdr || size > uint64(len(data)) {
			return
		}
		if typ == path[0] {
			if len(path) == 1 {
				fn(data[hdr:size])
			} else {
				walkBoxes(data[hdr:size], path[1:], visits, fn)
			}
		}
		data = data[size:]
	}
}

// mp4Duration reads the movie header (mvhd): duration / timescale.
func mp4Duration(data []byte) (float64, bool) {
	var ms float64
	found := false
	visits := 0
	walkBoxes(data, []string{"moov", "mvhd"}, &visits, func(b []byte) {
		var scale uint32
		var dur uint64
		switch {
		case len(b) >= 20 && b[0] == 0:
			scale, dur = binary.BigEndian.Uint32(b[12:16]), uint64(binary.BigEndian.Uint32(b[16:20]))
			if dur == math.MaxUint32 {
				return // unknown
			}
		case len(b) >= 32 && b[0] == 1:
			scale, dur = binary.BigEndian.Uint32(b[20:24]), binary.BigEndian.Uint64(b[24:32])
			if dur == math.MaxUint64 {
				return
			}
		default:
			return
		}
		if scale == 0 || found {
			return
		}
		ms, found = float64(dur)*1000/float64(scale), true
	})
	return ms, found
}

// opusHead returns the payload of an Ogg file's first packet when it is an
// Opus identification header (its pre-skip is at bytes 10–11).
func opusHead(data []byte) ([]byte, bool) {
	if len(data) < 27 || data[4] != 0 || data[5]&0x02 == 0 { // version 0, beginning of stream
		return nil, false
	}
	n := int(data[26])
	if len(data) < 27+n {
		return nil, false
	}
	length := 0
	for _, l := range data[27 : 27+n] {
		length += int(l)
		if l < 255 {
			break
		}
	}
	body := data[27+n:]
	if length < 19 || len(body) < length || !bytes.HasPrefix(body, []byte("OpusHead")) {
		return nil, false
	}
	return body[:length], true
}

// oggDuration reads an Ogg Opus file's length: the granule position of its
// last page (48 kHz samples, whatever the input rate) less the pre-skip.
func oggDuration(data []byte) (float64, bool) {
	head, ok := opusHead(data)
	if !ok {
		return 0, false
	}
	preSkip := int64(binary.LittleEndian.Uint16(head[10:12]))
	tail := data[max(0, len(data)-oggTail):]
	for i := len(tail) - 27; i >= 0; i-- {
		if tail[i] != 'O' || !bytes.HasPrefix(tail[i:], []byte("OggS")) || tail[i+4] != 0 {
			continue
		}
		granule := int64(binary.LittleEndian.Uint64(tail[i+6 : i+14]))
		if granule < 0 { // -1: no packet ends on this page
			continue
		}
		return float64(max(0, granule-preSkip)) * 1000 / 48000, true
	}
	return 0, false
}

// isMP3 recognises an ID3v2 tag followed by an MPEG audio frame, or a file
// that starts with the frame sync of an MPEG-1/2 Layer III frame with a
// valid bit rate and sampling rate.
func isMP3(data []byte) bool {
	if len(data) >= 10 && bytes.HasPrefix(data, []byte("ID3")) {
		// Size: four 7-bit bytes (syncsafe).
		s := data[6:10]
		if (s[0]|s[1]|s[2]|s[3])&0x80 != 0 || data[3] == 0xFF || data[4] == 0xFF {
			return false
		}
		size := int(s[0])<<21 | int(s[1])<<14 | int(s[2])<<7 | int(s[3]) + 10
		if data[5]&0x10 != 0 {
			size += 10 // footer
		}
		if size > id3Max || size >= len(data) {
			return false
		}
		data = data[size:]
	}
	return mp3Frame(data)
}

// mp3Frame reports whether data starts with a Layer III frame header.
func mp3Frame(h []byte) bool {
	if len(h) < 4 || h[0] != 0xFF || h[1]&0xE0 != 0xE0 {
		return false
	}
	version, layer := (h[1]>>3)&3, (h[1]>>1)&3
	bitrate, rate := h[2]>>4, (h[2]>>2)&3
	return version != 1 && layer == 1 && bitrate != 0 && bitrate != 15 && rate != 3
}

// EBML element ids used here.
const (
	ebmlDocTypeID  = 0x4282
	segmentID      = 0x18538067
	infoID         = 0x1549A966
	timecodeScale  = 0x2AD7B1
	durationElemID = 0x4489
)

// ebmlVint reads an EBML variable-length integer at the start of b: its
// value (with the length marker kept for ids, cleared for sizes), its
// length, and whether it is the reserved "unknown size".
func ebmlVint(b []byte, keepMarker bool) (v uint64, n int, unknown bool) {
	if len(b) == 0 || b[0] == 0 {
		return 0, 0, false
	}
	n = 1
	for mask := byte(0x80); b[0]&mask == 0; mask >>= 1 {
		n++
	}
	if n > 8 || len(b) < n {
		return 0, 0, false
	}
	v = uint64(b[0])
	if !keepMarker {
		v &= uint64(0xFF >> n)
	}
	allOnes := v == uint64(0xFF>>n)
	for _, c := range b[1:n] {
		v = v<<8 | uint64(c)
		allOnes = allOnes && c == 0xFF
	}
	return v, n, !keepMarker && allOnes
}

// ebmlElem reads an element header: id, payload size (-1: unknown), header
// length; ok false when b does not start with one.
func ebmlElem(b []byte) (id uint64, size int64, hdr int, ok bool) {
	id, n, _ := ebmlVint(b, true)
	if n == 0 || n > 4 {
		return 0, 0, 0, false
	}
	sz, m, unknown := ebmlVint(b[n:], false)
	if m == 0 {
		return 0, 0, 0, false
	}
	if unknown {
		return id, -1, n + m, true
	}
	if sz > uint64(len(b)) {
		return id, int64(len(b)), n + m, true // truncated: clamp, the caller bounds-checks
	}
	return id, int64(sz), n + m, true
}

// ebmlChildren calls fn for each child of the element payload b until fn
// returns false or the elements end or stop parsing. An element of unknown
// size extends to the end of b.
func ebmlChildren(b []byte, visits *int, fn func(id uint64, payload []byte) bool) {
	for len(b) > 0 && *visits < maxEBMLElem {
		*visits++
		id, size, hdr, ok := ebmlElem(b)
		if !ok {
			return
		}
		end := len(b)
		if size >= 0 {
			end = hdr + int(size)
		}
		if end > len(b) {
			end = len(b)
		}
		if !fn(id, b[hdr:end]) {
			return
		}
		b = b[end:]
	}
}

// ebmlDocType reads the DocType of an EBML header ("" when absent).
func ebmlDocType(data []byte) string {
	doc := ""
	visits := 0
	ebmlChildren(data, &visits, func(id uint64, header []byte) bool {
		ebmlChildren(header, &visits, func(id uint64, p []byte) bool {
			if id == ebmlDocTypeID {
				doc = string(bytes.TrimRight(p, "\x00"))
				return false
			}
			return true
		})
		return false // only the first element, the EBML header
	})
	return doc
}

// webmDuration reads Segment → Info → Duration (a float in TimecodeScale
// units, which default to 1 ms) from the first MiB of a WebM file.
func webmDuration(data []byte) (float64, bool) {
	data = data[:min(len(data), ebmlWindow)]
	var dur float64
	scale := 1e6
	found := false
	visits := 0
	ebmlChildren(data, &visits, func(id uint64, seg []byte) bool {
		if id != segmentID {
			return true
		}
		ebmlChildren(seg, &visits, func(id uint64, info []byte) bool {
			if id != infoID {
				return true
			}
			ebmlChildren(info, &visits, func(id uint64, p []byte) bool {
				switch {
				case id == timecodeScale && len(p) >= 1 && len(p) <= 8:
					var v uint64
					for _, c := range p {
						v = v<<8 | uint64(c)
					}
					scale = float64(v)
				case id == durationElemID && len(p) == 4:
					dur, found = float64(math.Float32frombits(binary.BigEndian.Uint32(p))), true
				case id == durationElemID && len(p) == 8:
					dur, found = math.Float64frombits(binary.BigEndian.Uint64(p)), true
				}
				return true
			})
			return false
		})
		return false
	})
	if !found || scale <= 0 || math.IsInf(dur, 0) {
		return 0, false
	}
	return dur * scale / 1e6, true
}
