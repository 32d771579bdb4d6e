package e2ee

import "errors"

// ErrReplayed is returned by Seen.Accept for an envelope whose sender
// sequence is not past the last one accepted from its device.
var ErrReplayed = errors.New("e2ee: replayed or reordered envelope")

// Seen remembers, for one thread, the last sender sequence accepted from each
// device, so a client refuses an envelope the server replays or reorders. It
// is not safe for concurrent use. The zero value is ready.
type Seen struct {
	last map[string]uint64
}

// Accept records e's sender sequence, or returns ErrReplayed when that device
// already sent this or a later one. Call it after Open succeeds.
func (s *Seen) Accept(e *Envelope) error {
	if s.last == nil {
		s.last = make(map[string]uint64)
	}
	if e.SenderSeq <= s.last[e.SenderDevice] {
		return ErrReplayed
	}
	s.last[e.SenderDevice] = e.SenderSeq
	return nil
}

// ErrKeyChanged is returned by Pins.Check when a device's keys differ from
// the ones first seen for it: a client shows it and seals nothing to the
// device until a person has compared the new fingerprint.
var ErrKeyChanged = errors.New("e2ee: a device's keys changed since they were first seen")

// Pins remembers the fingerprint first seen for each device (trust on first
// use), so a key swapped by the server is refused rather than used. The zero
// value is ready; it is not safe for concurrent use.
type Pins struct {
	fp map[string]string
}

// Check pins the device's fingerprint the first time and afterwards returns
// ErrKeyChanged for any other.
func (p *Pins) Check(deviceID string, hpkePub, signingPub []byte) error {
	if p.fp == nil {
		p.fp = make(map[string]string)
	}
	fp := string(Fingerprint(hpkePub, signingPub))
	if old, ok := p.fp[deviceID]; ok && old != fp {
		return ErrKeyChanged
	}
	p.fp[deviceID] = fp
	return nil
}
