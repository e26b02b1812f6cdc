package recordings

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	// keep stores a whole Opus recording's layout, sealed, for every
	// player after this one; log says when it could not.
	keep LayoutStore
	log  *slog.Logger
}

// LayoutStore keeps Opus recordings' sealed layouts
// (metadata.RecordingStore).
type LayoutStore interface {
	SetOggLayout(ctx context.Context, tenantID, id sb.ID, sealed []byte) error
}

// PlayerOption tunes a Player.
type PlayerOption func(*Player)

// WithLayouts has the player keep the layout of each Opus recording it
// plays whole in the recording's row, sealed under its data key, so that
// it is learnt once, not once per process; a failure to keep it is logged
// to log and costs only that.
func WithLayouts(store LayoutStore, log *slog.Logger) PlayerOption {
	return func(p *Player) { p.keep, p.log = store, log }
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

// keepSealed stores a whole recording's layout sealed under its data key.
func (p *Player) keepSealed(ctx context.Context, dataKey []byte, rec *sb.Recording, layout []int64) {
	sealed, err := sealLayout(dataKey, rec.ID, layout)
	if err == nil {
		err = p.keep.SetOggLayout(ctx, rec.TenantID, rec.ID, sealed)
	}
	if err != nil && p.log != nil {
		p.log.Warn("keeping an Opus recording's layout; the next player learns it again", "recording_id", rec.ID, "err", err)
	}
}

// layoutKDF names the key an Ogg layout is sealed with, derived from the
// recording's data key: the layout (how many bytes each second took)
// says something of what was said, so it is kept no plainer than the audio.
const layoutKDF = "switchboard recording v1 ogg layout"

func layoutAEAD(dataKey []byte) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, dataKey, nil, layoutKDF, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sealLayout seals layout (each second's length) for recording id:
// nonce(12) ‖ AES-256-GCM(uint32 per second), the ID as associated data.
func sealLayout(dataKey []byte, id sb.ID, layout []int64) ([]byte, error) {
	aead, err := layoutAEAD(dataKey)
	if err != nil {
		return nil, err
	}
	pt := make([]byte, 0, 4*len(layout))
	for _, n := range layout {
		pt = binary.BigEndian.AppendUint32(pt, uint32(n))
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, pt, id[:]), nil
}

// openLayout opens what sealLayout sealed.
func openLayout(dataKey []byte, id sb.ID, sealed []byte) ([]int64, error) {
	aead, err := layoutAEAD(dataKey)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, ErrTampered
	}
	pt, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], id[:])
	if err != nil || len(pt)%4 != 0 {
		return nil, ErrTampered
	}
	layout := make([]int64, len(pt)/4)
	for i := range layout {
		layout[i] = int64(binary.BigEndian.Uint32(pt[4*i:]))
	}
	return layout, nil
}

// NewPlayer returns a player that checks grants with grants and reads
// sealed recordings from store with keys unwrapped by ring.
func NewPlayer(grants sb.GrantService, store Store, ring *Keyring, opts ...PlayerOption) *Player {
	p := &Player{grants: grants, store: store, ring: ring}
	for _, o := range opts {
		o(p)
	}
	return p
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
	defer clear(key)
	obj, err := p.store.Open(ctx, rec.ObjectKey)
	if err != nil {
		return nil, err
	}
	if rec.SizeBytes > 0 && obj.Size() != rec.SizeBytes {
		return nil, errors.Join(fmt.Errorf("recordings: recording %s: the object holds %d bytes, its record says %d: %w",
			rec.ID, obj.Size(), rec.SizeBytes, ErrTruncated), obj.Close())
	}
	r, err := NewReader(obj, obj.Size(), key, Meta{TenantID: rec.TenantID, CallID: rec.CallID, RecordingID: rec.ID})
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
		whole := from == 0 && (to == 0 || to >= duration)
		layout := p.layout(k)
		if layout == nil && whole && rec.OggLayout != nil {
			layout, err = openLayout(key, rec.ID, rec.OggLayout)
			if err != nil {
				layout = nil // learnt again below
			}
		}
		a, err := NewOpusAudio(r, duration, rec.SegmentStarts, from, to, check, layout)
		if err != nil {
			return nil, errors.Join(err, obj.Close())
		}
		learnt := a.Layout()
		p.keepLayout(k, learnt)
		if whole && layout == nil && p.keep != nil {
			p.keepSealed(ctx, key, rec, learnt)
		}
		return &stream{file: a, contentType: "audio/ogg", obj: obj}, nil
	}
	a, err := NewAudio(r, duration, rec.SegmentStarts, from, to)
	if err != nil {
		return nil, errors.Join(sb.Errorf(sb.EINVALID, "from/to: %v", err), obj.Close())
	}
	a.Before = check
	return &stream{file: a, contentType: "audio/wav", obj: obj}, nil
}
