package recordings

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// Player opens recordings for the holders of grants: the only code that
// unwraps a recording's key to read audio.
type Player struct {
	grants sb.GrantService
	store  Store
	ring   *Keyring

	// layouts keeps the Ogg layout of Opus windows opened lately (the
	// length of each second's pages, no audio), so that a Range request
	// after the first decrypts only the segments it needs.
	mu      sync.Mutex
	layouts map[layoutKey][]int64
}

type layoutKey struct {
	recording sb.ID
	size      int64 // the object's, should it ever change
	from, to  time.Duration
}

// maxLayouts bounds the layouts a Player keeps: about 4 kB for an hour.
const maxLayouts = 256

func (p *Player) layout(k layoutKey) []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.layouts[k]
}

func (p *Player) keepLayout(k layoutKey, l []int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.layouts == nil || len(p.layouts) >= maxLayouts {
		p.layouts = map[layoutKey][]int64{}
	}
	p.layouts[k] = l
}

var _ sb.RecordingPlayer = (*Player)(nil)

// NewPlayer returns a player that checks grants with grants and reads
// sealed recordings from store with keys unwrapped by ring.
func NewPlayer(grants sb.GrantService, store Store, ring *Keyring) *Player {
	return &Player{grants: grants, store: store, ring: ring}
}

// stream is an open recording: its audio file and the object under it.
type stream struct {
	file interface {
		io.ReaderAt
		Size() int64
	}
	contentType string
	obj         Object
}

func (s *stream) ReadAt(p []byte, off int64) (int, error) { return s.file.ReadAt(p, off) }
func (s *stream) Size() int64                             { return s.file.Size() }
func (s *stream) ContentType() string                     { return s.contentType }
func (s *stream) Close() error                            { return s.obj.Close() }

// OpenAudio uses the grant (which audits the use) and opens its recording.
// Each segment is decrypted only after the grant is checked again, so a
// revoked or expired grant stops a stream in progress.
func (p *Player) OpenAudio(ctx context.Context, grantID sb.ID, access sb.AudioAccess, from, to time.Duration, detail string) (sb.AudioFile, error) {
	_, rec, err := p.grants.UseGrant(ctx, grantID, access, detail)
	if err != nil {
		return nil, err
	}
	key, err := p.ring.Unwrap(rec.KeyVersion, rec.WrappedKey, rec.ID[:])
	if err != nil {
		return nil, fmt.Errorf("recordings: unwrap recording %s: %w", rec.ID, err)
	}
	obj, err := p.store.Open(ctx, rec.ObjectKey)
	if err != nil {
		clear(key)
		return nil, err
	}
	if rec.SizeBytes > 0 && obj.Size() != rec.SizeBytes {
		clear(key)
		return nil, errors.Join(fmt.Errorf("recordings: recording %s: the object holds %d bytes, its record says %d: %w",
			rec.ID, obj.Size(), rec.SizeBytes, ErrTruncated), obj.Close())
	}
	r, err := NewReader(obj, obj.Size(), key, Meta{TenantID: rec.TenantID, CallID: rec.CallID, RecordingID: rec.ID})
	clear(key)
	if err == nil && (rec.Segments > 0 && r.Segments() != rec.Segments || r.Truncated() && !rec.Truncated) {
		err = fmt.Errorf("recordings: recording %s: the object holds %d segments (truncated: %v), its record says %d (truncated: %v): %w",
			rec.ID, r.Segments(), r.Truncated(), rec.Segments, rec.Truncated, ErrTruncated)
	}
	if err != nil {
		return nil, errors.Join(err, obj.Close())
	}
	duration := time.Duration(rec.DurationMS) * time.Millisecond
	if duration <= 0 {
		return nil, errors.Join(sb.Errorf(sb.ENOTFOUND, "the recording holds no audio"), obj.Close())
	}
	check := func(int) error { return p.grants.CheckGrant(ctx, grantID) }
	if r.Meta().Codec == "opus" || r.Meta().OperatorCodec == "opus" {
		k := layoutKey{rec.ID, obj.Size(), from, to}
		a, err := NewOpusAudio(r, duration, rec.SegmentStarts, from, to, check, p.layout(k))
		if err != nil {
			return nil, errors.Join(err, obj.Close())
		}
		p.keepLayout(k, a.Layout())
		return &stream{file: a, contentType: "audio/ogg", obj: obj}, nil
	}
	a, err := NewAudio(r, duration, rec.SegmentStarts, from, to)
	if err != nil {
		return nil, errors.Join(sb.Errorf(sb.EINVALID, "from/to: %v", err), obj.Close())
	}
	a.Before = check
	return &stream{file: a, contentType: "audio/wav", obj: obj}, nil
}
