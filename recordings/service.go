package recordings

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// Records is where recordings' records are kept (metadata.RecordingStore).
type Records interface {
	TenantPolicy(ctx context.Context, tenantID sb.ID) (sb.RecordingPolicy, error)
	CreateRecording(ctx context.Context, r *sb.Recording) error
	UpdateRecording(ctx context.Context, r *sb.Recording) error
	ExpiredRecordings(ctx context.Context, now time.Time, limit int) ([]*sb.Recording, error)
	FindRecordingByID(ctx context.Context, tenantID, id sb.ID) (*sb.Recording, error)
	StuckRecordings(ctx context.Context, instance string, endedBefore time.Time, limit int) ([]*sb.Recording, error)
	ConsentDigit(ctx context.Context, tenantID sb.ID) (byte, error)
}

// Service records calls that their tenant's policy and consent allow:
// call control's switchboard.Recordings.
type Service struct {
	store    Store
	ring     *Keyring
	records  Records
	events   sb.CallRecorder // nil: destructions are only in the recording's row
	audit    sb.AuditLog     // nil: destructions are not audited
	now      func() time.Time
	instance string // whose calls' stuck recordings Reap finishes

	mu        sync.Mutex
	undeleted map[string]struct{} // objects of destroyed recordings whose deletion failed, for Sweep to delete
}

// WithInstance names the instance whose calls' recordings this service
// makes, as calls.instance does: Reap finishes only those.
func WithInstance(name string) ServiceOption { return func(s *Service) { s.instance = name } }

// ServiceOption tunes a Service.
type ServiceOption func(*Service)

// WithEvents puts recording destructions on their calls' timelines.
func WithEvents(e sb.CallRecorder) ServiceOption { return func(s *Service) { s.events = e } }

// WithAudit audits every destruction of a recording: retention and
// withdrawn consent.
func WithAudit(l sb.AuditLog) ServiceOption { return func(s *Service) { s.audit = l } }

// destroyed audits the destruction of rec and puts it on the call's
// timeline.
func (s *Service) destroyed(ctx context.Context, rec *sb.Recording, reason string) error {
	var errs []error
	if s.audit != nil {
		errs = append(errs, s.audit.Append(ctx, destroyEntry(rec, reason)))
	}
	if s.events != nil {
		errs = append(errs, s.events.AddCallEvents(ctx, &sb.CallEvent{CallID: rec.CallID, TenantID: rec.TenantID,
			Type: sb.EventRecordingDestroyed, Detail: map[string]any{"recording_id": rec.ID, "reason": reason}}))
	}
	return errors.Join(errs...)
}

func destroyEntry(rec *sb.Recording, reason string) *sb.AuditEntry {
	return &sb.AuditEntry{TenantID: &rec.TenantID, Action: "recording.destroy", ResourceType: "recording",
		ResourceID: rec.ID.String(), Reason: reason}
}

// WithServiceClock sets the clock that dates recordings and decides
// retention.
func WithServiceClock(now func() time.Time) ServiceOption { return func(s *Service) { s.now = now } }

var _ sb.Recordings = (*Service)(nil)

// NewService returns a service that seals recordings into store with keys
// wrapped by ring, and keeps their records in records.
func NewService(store Store, ring *Keyring, records Records, opts ...ServiceOption) *Service {
	s := &Service{store: store, ring: ring, records: records, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Sweep first reaps recordings stuck in `recording` (Reap) and deletes
// again the objects of destroyed recordings whose deletion failed, then
// destroys the recordings whose tenant's retention has passed: the
// wrapped data key is erased and the object deleted (crypto-shredding: a
// copy of the object that escaped deletion cannot be opened), and the
// destruction is recorded. A failure of the first two does not keep
// retention from being applied: it is returned with the rest. It returns
// how many it destroyed for retention.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	var errs []error
	if _, err := s.Reap(ctx); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, s.deleteAgain(ctx))
	n := 0
	for {
		expired, err := s.records.ExpiredRecordings(ctx, s.now(), 200)
		if err != nil {
			return n, errors.Join(append(errs, err)...)
		}
		if len(expired) == 0 {
			return n, errors.Join(errs...)
		}
		for _, rec := range expired {
			erased, err := s.destroy(ctx, rec, "retention period ended")
			if erased {
				n++
			}
			if err != nil {
				errs = append(errs, err)
				if rec.Status != sb.RecordingDestroyed {
					// Its key is not erased, so it is still expired: the
					// next sweep tries again rather than this one forever.
					return n, errors.Join(errs...)
				}
			}
		}
	}
}

// reapAfter is how long after its call ended a recording still marked as
// being made counts as stuck: a call's record is written after its
// recording is stored, so this is only a margin.
const reapAfter = time.Minute

// Reap finishes the recordings that this instance's calls left in
// `recording` (a crash, a spool part smaller than one segment, a failed
// update while one was finished or destroyed): one whose object holds a
// whole segment is recorded as Recovered does (complete if it was stored
// whole), and one with nothing readable is destroyed. It returns how many
// it finished or destroyed. A service without WithInstance (a command
// run beside the service, which has not recovered the spool) reaps none.
func (s *Service) Reap(ctx context.Context) (int, error) {
	if s.instance == "" {
		return 0, nil
	}
	stuck, err := s.records.StuckRecordings(ctx, s.instance, s.now().Add(-reapAfter), 1000)
	if err != nil {
		return 0, err
	}
	n := 0
	var first error
	for _, rec := range stuck {
		err := s.finishCut(ctx, rec)
		if sb.ErrorCode(err) == sb.ENOTFOUND || errors.Is(err, ErrFormat) || errors.Is(err, ErrTampered) || errors.Is(err, ErrTruncated) {
			err = s.Destroy(ctx, rec, "left unfinished with nothing readable")
		}
		if err != nil {
			first = cmpErr(first, fmt.Errorf("recordings: reap %s: %w", rec.ID, err))
			continue
		}
		n++
	}
	return n, first
}

// Destroy erases a recording's wrapped data key, in any state, and then
// deletes its object (crypto-shredding: a copy of the object that escaped
// deletion, or that a recorder still running elsewhere uploads later,
// cannot be opened), and records and audits why. The key goes first so
// that a recording destroyed while it is made stays destroyed: its
// recorder's Finish finds it so and deletes what it stored.
//
// The erased key is the destruction, so it is recorded and audited
// whatever the object's deletion returns; a deletion that failed is
// returned, and tried again by the next Sweep. A recording destroyed
// already (here, or by another instance first) is not recorded or audited
// again: Destroy only deletes its object again.
func (s *Service) Destroy(ctx context.Context, rec *sb.Recording, reason string) error {
	_, err := s.destroy(ctx, rec, reason)
	return err
}

// destroy is Destroy, reporting whether this call erased the key.
func (s *Service) destroy(ctx context.Context, rec *sb.Recording, reason string) (erased bool, err error) {
	if rec.Status == sb.RecordingDestroyed {
		return false, s.deleteObject(ctx, rec.ObjectKey)
	}
	if rec.EndedAt == nil {
		end := s.now().UTC().Truncate(time.Microsecond)
		rec.EndedAt = &end
	}
	status := rec.Status
	clear(rec.WrappedKey)
	rec.Status, rec.WrappedKey = sb.RecordingDestroyed, nil
	err = s.records.UpdateRecording(ctx, rec)
	if sb.ErrorCode(err) == sb.ECONFLICT {
		// Destroyed first elsewhere, which recorded it.
		return false, s.deleteObject(ctx, rec.ObjectKey)
	}
	if err != nil {
		rec.Status = status // not destroyed: a retry with rec destroys it
		return false, err
	}
	return true, errors.Join(s.destroyed(ctx, rec, reason), s.deleteObject(ctx, rec.ObjectKey))
}

// deleteObject deletes the object of a destroyed recording, or keeps its
// key for Sweep to try again.
func (s *Service) deleteObject(ctx context.Context, key string) error {
	err := s.store.Delete(ctx, key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.undeleted == nil {
			s.undeleted = make(map[string]struct{})
		}
		s.undeleted[key] = struct{}{}
		return fmt.Errorf("recordings: destroy: %w", err)
	}
	delete(s.undeleted, key)
	return nil
}

// deleteAgain deletes the objects of destroyed recordings whose deletion
// failed before.
func (s *Service) deleteAgain(ctx context.Context) error {
	s.mu.Lock()
	keys := slices.Sorted(maps.Keys(s.undeleted))
	s.mu.Unlock()
	var errs []error
	for _, key := range keys {
		errs = append(errs, s.deleteObject(ctx, key))
	}
	return errors.Join(errs...)
}

// Recovered records the recordings a crash cut short, whose objects
// SpoolStore.Recover readied (keys): each is kept up to its last whole
// segment and plays that far. It returns how many it recorded and the
// first error; a key without a record is skipped.
func (s *Service) Recovered(ctx context.Context, keys []string) (int, error) {
	n := 0
	var first error
	for _, key := range keys {
		tenantID, recID, ok := ParseObjectKey(key)
		if !ok {
			continue
		}
		rec, err := s.records.FindRecordingByID(ctx, tenantID, recID)
		if err == nil {
			err = s.finishCut(ctx, rec)
		}
		if err != nil {
			first = cmpErr(first, fmt.Errorf("recordings: recover %s: %w", recID, err))
			continue
		}
		n++
	}
	return n, first
}

// finishCut records what the object of a recording that was never
// finished holds: its segments, each segment's start and the time its last
// record ends, learnt by decrypting each segment once (times only; no
// audio leaves this function). A recording whose object ends in a segment
// sealed as a middle one is failed and truncated; one stored whole (its
// Finish could not write the record) is complete. ENOTFOUND if there is no
// object.
func (s *Service) finishCut(ctx context.Context, rec *sb.Recording) error {
	obj, err := s.store.Open(ctx, rec.ObjectKey)
	if err != nil {
		return err
	}
	defer obj.Close()
	key, err := s.ring.Unwrap(rec.KeyVersion, rec.WrappedKey, rec.ID[:])
	if err != nil {
		return err
	}
	r, err := NewReader(obj, obj.Size(), key, Meta{TenantID: rec.TenantID, CallID: rec.CallID, RecordingID: rec.ID})
	clear(key)
	if err != nil {
		return err
	}
	m := r.Meta()
	starts := make([]int64, r.Segments())
	end := m.Start
	for i := range starts {
		recs, err := r.Segment(i)
		if err != nil {
			return err
		}
		switch {
		case len(recs) > 0:
			starts[i] = recs[0].At.Sub(m.Start).Milliseconds()
		case i > 0:
			starts[i] = starts[i-1]
		}
		for _, x := range recs {
			if e := x.At.Add(recordLength(m, x)); e.After(end) {
				end = e
			}
		}
	}
	end = end.UTC().Truncate(time.Microsecond)
	rec.Status, rec.Truncated = sb.RecordingComplete, r.Truncated()
	if rec.Truncated {
		rec.Status = sb.RecordingFailed
	}
	rec.EndedAt, rec.SizeBytes, rec.Segments, rec.SegmentStarts = &end, obj.Size(), r.Segments(), starts
	rec.DurationMS = end.Sub(rec.StartedAt).Milliseconds()
	return s.records.UpdateRecording(ctx, rec)
}

// recordLength is how much audio a record holds.
func recordLength(m Meta, x Record) time.Duration {
	if x.Kind != KindAudio || m.ClockRate == 0 {
		return 0
	}
	switch m.ChannelCodec(x.Channel) {
	case "PCMU", "PCMA":
		return time.Duration(len(x.Payload)) * time.Second / time.Duration(m.ClockRate)
	case "opus":
		return time.Duration(opusDuration(x.Payload)) * time.Second / 48000
	}
	return 0
}

// Destroyed reports whether the recording at object key was destroyed (or
// has no record): SpoolStore.SetGone asks it after each upload.
func (s *Service) Destroyed(ctx context.Context, key string) (bool, error) {
	rec, err := s.recordAt(ctx, key)
	if rec == nil {
		return err == nil, err
	}
	return rec.Status == sb.RecordingDestroyed, nil
}

// UploadLost reports whether a multipart upload to object key can no
// longer be completed by anyone: its recording is no longer being made
// (finished, recovered, reaped or destroyed) or has no record.
// S3Store.AbortUploads asks it.
func (s *Service) UploadLost(ctx context.Context, key string) (bool, error) {
	rec, err := s.recordAt(ctx, key)
	if rec == nil {
		return err == nil, err
	}
	return rec.Status != sb.RecordingActive, nil
}

// uploadGrace is how old a multipart upload must be before it is weighed
// as lost: an upload begins before its recording's record is written.
const uploadGrace = time.Minute

// AbortLostUploads has abort (S3Store.AbortUploads, or the spool's) abort
// the multipart uploads begun over uploadGrace ago whose recording is no
// longer being made (UploadLost).
func (s *Service) AbortLostUploads(ctx context.Context, abort func(context.Context, time.Time, func(context.Context, string) (bool, error)) (int, error)) (int, error) {
	return abort(ctx, s.now().Add(-uploadGrace), s.UploadLost)
}

// recordAt is the record of the recording at object key; nil and no error
// if there is none.
func (s *Service) recordAt(ctx context.Context, key string) (*sb.Recording, error) {
	tenantID, recID, ok := ParseObjectKey(key)
	if !ok {
		return nil, fmt.Errorf("recordings: %q is not a recording's key", key)
	}
	rec, err := s.records.FindRecordingByID(ctx, tenantID, recID)
	if sb.ErrorCode(err) == sb.ENOTFOUND {
		return nil, nil
	}
	return rec, err
}

// ConsentDigit is the key the tenant's callers press to consent.
func (s *Service) ConsentDigit(ctx context.Context, tenantID sb.ID) (byte, error) {
	return s.records.ConsentDigit(ctx, tenantID)
}

// Begin starts recording c if its tenant's policy allows it with consent.
func (s *Service) Begin(ctx context.Context, c *sb.Call, consent *sb.Consent, codec, operator sb.Codec) (sb.ActiveRecording, error) {
	policy, err := s.records.TenantPolicy(ctx, c.TenantID)
	if err != nil {
		return nil, err
	}
	if !sb.MayRecord(policy, consent) {
		return nil, nil
	}
	given := *consent
	given.Policy = policy
	now := s.now().UTC().Truncate(time.Microsecond)
	if operator.Name == "" {
		operator = codec
	}
	if operator.ClockRate != codec.ClockRate {
		return nil, fmt.Errorf("recordings: the caller's %s and the operator's %s differ in clock rate", codec.Name, operator.Name)
	}
	rec := &sb.Recording{ID: sb.NewID(), TenantID: c.TenantID, CallID: c.ID, Status: sb.RecordingActive,
		Codec: codec.Name, OperatorCodec: operator.Name, ClockRate: codec.ClockRate, StartedAt: now, Consent: given, Format: FormatVersion}
	r, err := StartRecorder(ctx, s.store, s.ring, Meta{TenantID: c.TenantID, CallID: c.ID, RecordingID: rec.ID,
		Codec: codec.Name, OperatorCodec: operator.Name, ClockRate: codec.ClockRate, Start: now, Channels: 2})
	if err != nil {
		return nil, err
	}
	rec.ObjectKey, rec.KeyVersion, rec.WrappedKey = r.key, r.version, r.wrapped
	if err := s.records.CreateRecording(ctx, rec); err != nil {
		return nil, errors.Join(err, r.Destroy(context.WithoutCancel(ctx)))
	}
	return &active{s: s, r: r, rec: rec}, nil
}

type active struct {
	s   *Service
	r   *Recorder
	rec *sb.Recording
}

func (a *active) Tap(fromCaller bool, payload []byte, at time.Time) { a.r.Tap(fromCaller, payload, at) }
func (a *active) Pause(at time.Time)                                { a.r.Pause(at) }
func (a *active) Resume(at time.Time)                               { a.r.Resume(at) }

func (a *active) Finish(ctx context.Context) (*sb.Recording, error) {
	res, err := a.r.Finish(ctx)
	end := a.s.now().UTC().Truncate(time.Microsecond)
	a.rec.EndedAt = &end
	if err != nil {
		a.rec.Status = sb.RecordingFailed
	} else {
		a.rec.Status, a.rec.SizeBytes, a.rec.Segments, a.rec.Dropped = sb.RecordingComplete, res.Size, res.Segments, res.Dropped
		a.rec.SegmentStarts = make([]int64, len(res.SegmentStarts))
		for i, t := range res.SegmentStarts {
			a.rec.SegmentStarts[i] = t.Sub(a.rec.StartedAt).Milliseconds()
		}
	}
	uerr := a.s.records.UpdateRecording(ctx, a.rec)
	if sb.ErrorCode(uerr) == sb.ECONFLICT {
		// Destroyed while it was made (an erasure): its key is gone, and
		// what the recorder stored since goes too.
		a.rec.Status, a.rec.WrappedKey = sb.RecordingDestroyed, nil
		return nil, errors.Join(uerr, a.s.store.Delete(ctx, a.rec.ObjectKey))
	}
	if err != nil {
		return nil, errors.Join(err, uerr)
	}
	if uerr != nil {
		return nil, fmt.Errorf("recordings: record the stored recording: %w", uerr)
	}
	return a.rec, nil
}

// Destroy stops a recording in progress and removes what it stored; a
// recording already stored (the call went on to a party outside the
// tenant's operators) loses its object and key the same way.
func (a *active) Destroy(ctx context.Context, reason string) error {
	var err error
	if a.rec.Status == sb.RecordingActive {
		err = a.r.Destroy(ctx)
	} else if a.rec.Status != sb.RecordingDestroyed {
		err = a.s.deleteObject(ctx, a.rec.ObjectKey)
	}
	if a.rec.EndedAt == nil {
		end := a.s.now().UTC().Truncate(time.Microsecond)
		a.rec.EndedAt = &end
	}
	a.rec.Status, a.rec.WrappedKey = sb.RecordingDestroyed, nil
	uerr := a.s.records.UpdateRecording(ctx, a.rec)
	if sb.ErrorCode(uerr) == sb.ECONFLICT {
		// Destroyed first elsewhere (an erasure), which audited it.
		return err
	}
	if uerr != nil {
		return errors.Join(err, uerr)
	}
	// The key is erased: that is the destruction, audited whatever became
	// of the audio. Call control puts it on the call's timeline.
	if a.s.audit != nil {
		err = errors.Join(err, a.s.audit.Append(ctx, destroyEntry(a.rec, reason)))
	}
	return err
}
