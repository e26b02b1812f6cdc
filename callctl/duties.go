package callctl

import (
	"context"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/media"
)

// What a call does the same way in every phase: its bridge, its
// recording (consent and pauses), DTMF and hold.

// bridgeOperator bridges the caller to operator a and tells them; then the
// recording, if any, taps the new bridge, or starts if consent allows. A
// caller on hold stays on hold: the bridge waits.
func (r *callRun) bridgeOperator(ctx context.Context, a *agent) {
	r.matchOperator(a)
	r.setBridge(NewBridge(r.leg.Media(), a.conn.Media(),
		WithRewriters(a.toOperator, NewStreamRewriter(r.leg.Media().Codec().ClockRate)),
		WithBridgeClock(r.s.now), WithDTMF(r.onDTMF), r.measured()), bridgedOperator)
	a.conn.Connected(r.c.ID)
	r.record(ctx)
	r.showRecording()
}

// recordingStatus is where the call's recording stands now.
func (r *callRun) recordingStatus() sb.RecordingView {
	st := sb.RecordingView{State: sb.RecordingOff, Paused: r.paused}
	switch {
	case r.recording != nil && !r.stored && r.paused:
		st.State = sb.RecordingPaused
	case r.recording != nil && !r.stored:
		st.State = sb.RecordingOn
	}
	if r.consent != nil {
		st.Consent = "refused"
		if r.consent.Given {
			st.Consent = "given"
		}
	}
	return st
}

// showRecording tells the operator the call is bridged to where its
// recording stands, when that changed since they were last told.
func (r *callRun) showRecording() {
	if r.ag == nil || r.bridged != bridgedOperator || r.hop != nil { // a handed-over call's recording is the other instance's
		return
	}
	n, ok := r.ag.conn.(sb.RecordingNotifier)
	if !ok {
		return
	}
	st := r.recordingStatus()
	if st == r.shown && r.shownTo == r.ag.conn {
		return
	}
	r.shown, r.shownTo = st, r.ag.conn
	n.RecordingState(r.c.ID, st)
}

// bridgeOut bridges the caller to the leg placed for them.
func (r *callRun) bridgeOut(ctx context.Context, kind bridgeKind) {
	r.setBridge(NewBridge(r.leg.Media(), r.out.Media(), WithBridgeClock(r.s.now), WithDTMF(r.onDTMF), r.measured()), kind)
	r.record(ctx)
}

// measured has the bridge measure the delay it adds, when the switch was
// asked to.
func (r *callRun) measured() BridgeOption {
	if r.s.relayDelay == nil {
		return func(*Bridge) {}
	}
	return WithDelay(r.s.relayDelay)
}

// bridgeNobody keeps reading the caller's audio while nobody is bridged
// to them (a transfer rings, or waits in a queue): it goes nowhere and is
// not recorded, but the keys they press reach the timeline.
func (r *callRun) bridgeNobody() {
	r.setBridge(NewBridge(r.leg.Media(), discard{r.leg.Media().Codec()}, WithBridgeClock(r.s.now), WithDTMF(r.onDTMF)), bridgedNobody)
}

// discard is a MediaPort that drops what it is sent.
type discard struct{ codec sb.Codec }

func (d discard) Codec() sb.Codec     { return d.codec }
func (discard) SetSink(func([]byte))  {}
func (discard) WriteRTP([]byte) error { return nil }

// setBridge makes b the call's audio path, in place of the one before,
// and starts it, unless the caller is on hold: they are recvonly and send
// nothing, and the bridge starts when they are taken off hold. The
// recording is not waited for: both sides hear each other first.
func (r *callRun) setBridge(b *Bridge, kind bridgeKind) {
	r.unbridge()
	r.bridge, r.bridged = b, kind
	r.tapRecording()
	if !r.held || kind != bridgedOperator {
		b.Start()
	}
}

// record starts the recording if the bridge reaches the tenant's
// operators and consent allows, and points the tap at it.
func (r *callRun) record(ctx context.Context) {
	if r.bridged.reachesOperator() && r.answered() {
		r.startRecording(ctx)
	}
	r.tapRecording()
}

// unbridge stops the call's bridge and adds its media to the call's: a
// transferred call has one bridge per party.
func (r *callRun) unbridge() {
	b := r.bridge
	if b == nil {
		return
	}
	b.Stop()
	nobody := r.bridged == bridgedNobody
	r.bridge, r.bridged = nil, 0
	if nobody {
		return // what the caller said while nobody listened is not the call's audio
	}
	from, to := b.Stats()
	for _, d := range []struct{ dst, src *sb.MediaStats }{{&r.c.FromCaller, &from}, {&r.c.ToCaller, &to}} {
		if d.src.Packets > 0 {
			// Silent until one bridge heard something.
			d.dst.Silent = d.src.Silent && (d.dst.Packets == 0 || d.dst.Silent)
		}
		d.dst.Packets += d.src.Packets
		d.dst.Bytes += d.src.Bytes
		d.dst.Lost += d.src.Lost
		d.dst.JitterMS = max(d.dst.JitterMS, d.src.JitterMS)
	}
}

// onDTMF takes a key the bridge relayed (RFC 4733), from the relay's
// goroutine: the call's loop puts it on the timeline.
func (r *callRun) onDTMF(fromCaller bool, d byte) {
	select {
	case r.dtmf <- dtmfKey{fromCaller, d}:
	default:
	}
}

// matchOperator switches operator a's connection to the caller's codec,
// and their stream's clock with it.
func (r *callRun) matchOperator(a *agent) {
	if err := matchCodec(r.leg.Media(), a.conn.Media()); err != nil {
		r.log.Warn("codec mismatch", "operator_id", a.conn.OperatorID(), "err", err) // the relay drops what it cannot carry
	}
	a.toOperator.SetClockRate(a.conn.Media().Codec().ClockRate)
}

// key takes a DTMF key (RFC 4733 from the bridge, or SIP INFO): on the
// timeline (masked while the recording is paused), and the caller's
// consent when it is the tenant's consent key.
func (r *callRun) key(ctx context.Context, k dtmfKey) {
	from := "operator"
	if k.fromCaller {
		from = "caller"
	}
	detail := map[string]any{"digit": string(k.digit), "from": from}
	if r.paused {
		// The recording is paused for a card number or a PIN: the keys
		// pressed meanwhile are that number, and land nowhere either.
		detail["digit"], detail["masked"] = "*", true
	}
	r.event(sb.EventDTMF, detail)
	if k.fromCaller && r.digit != 0 && k.digit == r.digit && (r.consent == nil || !r.consent.Given) {
		r.consentChanged(ctx, &sb.Consent{Given: true, Mechanism: sb.ConsentDTMF, At: r.s.now(), By: "caller"})
	}
}

// drainDTMF records the digits already reported by the bridge.
func (r *callRun) drainDTMF(ctx context.Context) {
	for {
		select {
		case k := <-r.dtmf:
			r.key(ctx, k)
		default:
			return
		}
	}
}

// consentChanged takes a consent stated in any phase. Given, the
// recording starts once (or if) the caller talks to an operator; refused
// or withdrawn, the recording stops at once and what was recorded is
// destroyed, wherever the call is.
func (r *callRun) consentChanged(ctx context.Context, c *sb.Consent) {
	r.consent = c
	r.event(sb.EventConsent, map[string]any{"given": c.Given, "mechanism": c.Mechanism, "by": c.By})
	switch {
	case !c.Given:
		r.destroyRecording(ctx, "consent withdrawn")
	case r.bridge != nil:
		r.record(ctx)
	}
	r.showRecording()
	r.flush(ctx) // whoever stated it can read what it did on the timeline now
}

// startRecording records the call if its tenant's policy and consent
// allow and it is not recorded yet. A pause asked for before it starts
// holds from its first moment.
func (r *callRun) startRecording(ctx context.Context) {
	if r.s.recordings == nil || r.hop != nil || r.recording != nil {
		return
	}
	if !r.digitRead && (r.consent == nil || !r.consent.Given) {
		dctx, cancel := dbContext(ctx)
		d, err := r.s.recordings.ConsentDigit(dctx, r.c.TenantID)
		cancel()
		if err != nil {
			r.log.Warn("consent key unknown", "err", err)
		}
		r.digit, r.digitRead = d, err == nil
	}
	if r.consent == nil || !r.consent.Given {
		return
	}
	// The store may be slow or down: the call goes on meanwhile, and a
	// recording that cannot start in time is a recording that failed.
	bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	operator := r.leg.Media().Codec()
	if r.bridge != nil {
		operator = r.bridge.operator.Codec()
	}
	rec, err := r.s.recordings.Begin(bctx, r.c, r.consent, r.leg.Media().Codec(), operator)
	switch {
	case err != nil:
		r.log.Error("recording did not start", "err", err)
		r.event(sb.EventRecordingFailed, map[string]any{"stage": "start"})
	case rec != nil:
		r.recording, r.stored, r.recCodec = rec, false, operator
		if r.paused {
			rec.Pause(r.s.now())
		}
		r.tapRecording()
		r.event(sb.EventRecordingStarted, map[string]any{"mechanism": r.consent.Mechanism})
		if r.paused {
			r.event(sb.EventRecordingPaused, nil)
		}
	}
}

// tapRecording points the bridge's tap at the recording, or at nothing
// while there is none, it is paused or stored, or the bridge reaches a
// party outside the tenant's operators.
func (r *callRun) tapRecording() {
	if r.bridge == nil {
		return
	}
	if r.recording == nil || r.stored || r.paused || !r.bridged.reachesOperator() {
		r.bridge.SetTap(nil)
		return
	}
	r.bridge.SetTap(inLaw(r.recording.Tap, r.bridge.operator.Codec(), r.recCodec))
}

// inLaw hands tap the operator's side in the codec the recording declared
// for it. A later bridge (a transfer) may reach an operator whose page
// sends the other G.711 law; its payloads are converted as the bridge
// itself converts them, so the channel stays in one codec.
func inLaw(tap Tap, got, declared sb.Codec) Tap {
	var convert func([]byte)
	switch {
	case got.Name == "PCMU" && declared.Name == "PCMA":
		convert = media.UlawToAlaw
	case got.Name == "PCMA" && declared.Name == "PCMU":
		convert = media.AlawToUlaw
	default:
		return tap
	}
	// Only the operator's direction uses buf, on its relay's goroutine.
	var buf [1500]byte
	return func(fromCaller bool, p []byte, at time.Time) {
		if fromCaller || len(p) > len(buf) {
			tap(fromCaller, p, at)
			return
		}
		n := copy(buf[:], p)
		convert(buf[:n])
		tap(false, buf[:n], at)
	}
}

// setPaused pauses or resumes the recording, in any phase: a recording in
// progress marks the gap; one not started yet starts paused. by is who
// asked, as the timeline names them.
func (r *callRun) setPaused(ctx context.Context, paused bool, by string) {
	if r.paused == paused {
		return
	}
	r.paused = paused
	detail := map[string]any(nil)
	switch {
	case r.recording == nil || r.stored:
		detail = map[string]any{"recording": false} // it holds for a recording that starts later
		r.tapRecording()
	case paused:
		r.tapRecording() // off before the mark: nothing said after it is kept
		r.recording.Pause(r.s.now())
	default:
		r.recording.Resume(r.s.now())
		r.tapRecording()
	}
	if by != "" {
		if detail == nil {
			detail = map[string]any{}
		}
		detail["by"] = by
	}
	if paused {
		r.event(sb.EventRecordingPaused, detail)
	} else {
		r.event(sb.EventRecordingResumed, detail)
	}
	r.showRecording()
	r.flush(ctx) // whoever asked can read it on the timeline now
}

// destroyRecording stops the recording and destroys what it holds: audio,
// upload and key.
func (r *callRun) destroyRecording(ctx context.Context, why string) {
	if r.recording == nil {
		return
	}
	if r.bridge != nil {
		r.bridge.SetTap(nil)
	}
	rec := r.recording
	r.recording, r.stored = nil, false
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := rec.Destroy(dctx, why); err != nil {
		r.log.Error("destroying a recording", "reason", why, "err", err)
		r.event(sb.EventRecordingFailed, map[string]any{"stage": "destroy"})
		return
	}
	r.event(sb.EventRecordingDestroyed, map[string]any{"reason": why})
	r.showRecording()
}

// storeRecording stores the recording whole once nobody of the tenant's
// talks to the caller any more. It stays the call's: consent withdrawn
// later in the call still destroys it.
func (r *callRun) storeRecording(ctx context.Context) {
	if r.recording == nil || r.stored {
		return
	}
	if r.bridge != nil {
		r.bridge.SetTap(nil)
	}
	r.stored = true
	// The last part of the upload may take a while; the call is over.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	rec, err := r.recording.Finish(ctx)
	if err != nil {
		r.log.Error("recording not stored", "err", err)
		r.event(sb.EventRecordingFailed, map[string]any{"stage": "store"})
		return
	}
	r.event(sb.EventRecordingStored, map[string]any{"recording_id": rec.ID, "size_bytes": rec.SizeBytes, "dropped_packets": rec.Dropped})
}

// hold puts the caller on hold or takes them off, at the operator's word.
// A hold stops the bridge at once, before the trunk is told: what the
// operator says once they press hold never reaches the caller, however
// long the trunk takes to answer; if the trunk refuses, audio flows again
// and the operator is told the call is not held. Taking the caller back
// starts the bridge once the trunk has agreed.
func (r *callRun) hold(ctx context.Context, held bool) {
	if held {
		r.bridge.Stop()
	}
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := r.leg.Hold(hctx, held)
	cancel()
	if err != nil {
		r.log.Warn("hold", "held", held, "err", err)
		r.event(sb.EventHoldFailed, map[string]any{"held": held, "reason": err.Error()})
		if held && !r.held {
			r.bridge.Start()
		}
		r.ag.conn.Held(r.c.ID, r.held)
		return
	}
	r.held = held
	if held {
		r.event(sb.EventHeld, map[string]any{"by": sb.PartyOperator})
		return
	}
	r.bridge.Start()
	r.event(sb.EventResumed, map[string]any{"by": sb.PartyOperator})
}

// releaseHold takes the caller off the hold an operator put them on, as
// the call goes on to someone other than an operator here.
func (r *callRun) releaseHold(ctx context.Context) {
	if !r.held {
		return
	}
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := r.leg.Hold(hctx, false)
	cancel()
	if err != nil {
		r.log.Warn("taking the caller off hold", "err", err)
		r.event(sb.EventHoldFailed, map[string]any{"held": false, "reason": err.Error()})
		return
	}
	r.held = false
	r.event(sb.EventResumed, map[string]any{"by": "switchboard"})
}

// EventMuted returns the event type for a mute change.
func EventMuted(muted bool) sb.EventType {
	if muted {
		return sb.EventMute
	}
	return sb.EventUnmute
}
