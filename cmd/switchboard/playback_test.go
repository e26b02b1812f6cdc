package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/testenv"
	"github.com/switchboard-voice/switchboard/media"
	"github.com/switchboard-voice/switchboard/metadata"
	"github.com/switchboard-voice/switchboard/recordings"
	"github.com/switchboard-voice/switchboard/sip/siptest"
)

// An A-law caller answered by a page that sends μ-law: the recording keeps
// each direction in the codec it arrived in, and the WAV played through a
// grant holds, sample by sample, what each side sent, each decoded in its
// own law.
func TestMixedLawCallPlaysBackAsEachSideSpoke(t *testing.T) {
	g := mustGrantFixture(t, sb.SupportPolicy{Access: true, MaxTTLSeconds: 3600})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	phone := mustPhone(t, siptest.Options{Transport: "udp", Codec: sb.PCMA, Headers: map[string]string{"X-Recording-Consent": "yes"}})
	call, in := answeredCall(t, g.m, phone, g.op, "3000", "2000")
	if got := g.op.Codec(); got != "PCMU" {
		t.Fatalf("the operator's page sends %s, want PCMU for this test", got)
	}
	const frames = 25
	var mu sync.Mutex
	sent := map[bool][][]byte{} // by fromCaller
	send := func(fromCaller bool, fn func([]byte) error) {
		sendPattern(t, frames, func(p []byte) error {
			mu.Lock()
			sent[fromCaller] = append(sent[fromCaller], bytes.Clone(p))
			mu.Unlock()
			return fn(p)
		})
	}
	// What crossed the bridge, counted at each end: the recording holds
	// it once both ends have it.
	var atOperator, atCaller atomic.Int64
	g.op.SetAudioSink(func(*rtp.Packet) { atOperator.Add(1) })
	call.SetSink(func([]byte) { atCaller.Add(1) })
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		send(false, g.op.SendAudio)
	}()
	send(true, func(p []byte) error { return call.SendRTP(p, false) })
	wg.Wait()
	waitCount(t, &atOperator, frames-3, "caller frames at the operator")
	waitCount(t, &atCaller, frames-3, "operator frames at the caller")
	callerHangsUp(ctx, t, g.m, g.f.APIKey, call, in.CallID)

	gr := g.adminGrant(t, in.CallID)
	rec, code := callRecording(t, g.m, g.f.APIKey, in.CallID)
	if code != http.StatusOK ||
		rec.Codec != "PCMA" || rec.OperatorCodec != "PCMU" {
		t.Fatalf("recording record: %d %+v, want PCMA for the caller and PCMU for the operator", code, rec)
	}
	req, _ := http.NewRequest(http.MethodGet, g.m.HTTPURL()+"/v1/grants/"+gr.ID.String()+"/audio", nil)
	res, err := g.admin.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	wav, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "audio/wav" || len(wav) < 44 {
		t.Fatalf("audio: %d %v, %d bytes", res.StatusCode, res.Header, len(wav))
	}
	// Each channel as its own run of 16-bit samples.
	var left, right []byte
	for f := 44; f+4 <= len(wav); f += 4 {
		left, right = append(left, wav[f:f+2]...), append(right, wav[f+2:f+4]...)
	}
	// A frame is laid where it arrived; the next one, arriving a little
	// early, may cover its last samples, so the first 100 are compared.
	heard := func(channel []byte, frames [][]byte, decode func(byte) int16) int {
		n := 0
		for _, f := range frames {
			var want []byte
			for _, b := range f[:100] {
				want = binary.LittleEndian.AppendUint16(want, uint16(decode(b)))
			}
			if bytes.Contains(channel, want) {
				n++
			}
		}
		return n
	}
	if n := heard(left, sent[true], media.AlawToLinear); n < frames-3 {
		t.Errorf("the caller's channel holds %d of the %d A-law frames sent, decoded as A-law", n, frames)
	}
	if n := heard(right, sent[false], media.UlawToLinear); n < frames-3 {
		t.Errorf("the operator's channel holds %d of the %d μ-law frames sent, decoded as μ-law", n, frames)
	}
}

// The real binary killed (SIGKILL) mid-recording and started again: the
// recording is recovered to its last whole segment, marked truncated with
// the real end of its audio (not the restart), and plays that far through
// a grant, holding what the caller said in the segments kept, and nothing
// else.
func TestKilledMidRecordingPlaysAfterRestart(t *testing.T) {
	s3 := testenv.NewS3(t)
	keyring := "1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{42}, 32))
	dbURL, spool := testenv.DatabaseURL(t), t.TempDir()
	s := mustStartBinary(t, "SWITCHBOARD_DATABASE_URL="+dbURL, "SWITCHBOARD_RECORDINGS=s3", "SWITCHBOARD_KEYRING="+keyring,
		"SWITCHBOARD_S3_ENDPOINT="+s3.Endpoint, "SWITCHBOARD_S3_BUCKET="+s3.Bucket, "SWITCHBOARD_S3_ACCESS_KEY="+s3.AccessKey,
		"SWITCHBOARD_S3_SECRET_KEY="+s3.SecretKey, "SWITCHBOARD_RECORDING_SPOOL="+spool)
	c := binaryCallWith(t, s, "crashrec", siptest.Options{Transport: "udp", Headers: map[string]string{"X-Recording-Consent": "yes"}},
		"--recording-policy", "consent")
	admin := s.run(t, testPassword, "user", "create", "--tenant", c.tenant, "--email", "admin@crashrec.test", "--role", "admin")

	const frames = 450 // 9 s of both sides: two whole segments and part of a third
	var mu sync.Mutex
	var said [][]byte
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sendPattern(t, frames, c.op.SendAudio)
	}()
	sendPattern(t, frames, func(p []byte) error {
		mu.Lock()
		said = append(said, bytes.Clone(p))
		mu.Unlock()
		return c.call.SendRTP(p, false)
	})
	wg.Wait()
	// 900 records: two whole segments of 380 and part of a third, which
	// is sealed only at the end of the call.
	whole := waitSpoolSegments(t, spool, 2)
	s.kill()
	restarted := time.Now()
	s.start(t) // the same database, spool and instance name
	waitBinaryCall(t, s, c.key, c.in.CallID)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := metadata.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tenantID, err1 := sb.ParseID(c.tenant)
	adminID, err2 := sb.ParseID(admin)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	as := sb.NewContextWithActor(ctx, &sb.Actor{TenantID: tenantID, UserID: adminID, Role: sb.RoleAdmin, IP: "127.0.0.1"})
	rec, err := metadata.NewRecordingStore(db).FindRecordingByCallID(as, c.in.CallID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != sb.RecordingFailed || !rec.Truncated || rec.Segments != whole || rec.EndedAt == nil ||
		!rec.EndedAt.Before(restarted) {
		t.Fatalf("recovered recording: %s, truncated %v, %d segments, %d ms, ended %v (restarted %v)",
			rec.Status, rec.Truncated, rec.Segments, rec.DurationMS, rec.EndedAt, restarted)
	}
	if err := metadata.NewTenantService(db).SetSupportPolicy(ctx, tenantID, sb.SupportPolicy{Access: true, MaxTTLSeconds: 3600}); err != nil {
		t.Fatal(err)
	}
	grants := metadata.NewGrantStore(db)
	g, err := grants.RequestGrant(as, sb.GrantRequest{CallID: c.in.CallID, Reason: "crash check", Ticket: "T-9"})
	if err != nil {
		t.Fatal(err)
	}
	ring, err := recordings.ParseKeyring(keyring)
	if err != nil {
		t.Fatal(err)
	}
	backend, err := recordings.NewS3Store(context.Background(), recordings.S3Config{Endpoint: s3.Endpoint, Bucket: s3.Bucket, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	store, err := recordings.NewSpoolStore(spool, backend) // the object, uploaded or still waiting
	if err != nil {
		t.Fatal(err)
	}
	f, err := recordings.NewPlayer(grants, store, ring).OpenAudio(as, g.ID, sb.AccessPlay, 0, 0, "test")
	if err != nil {
		t.Fatalf("playing the recovered recording: %v", err)
	}
	defer f.Close()
	wav, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
	if err != nil || int64(len(wav)) != 44+rec.DurationMS*8*4 {
		t.Fatalf("read %d bytes of %d (%d ms): %v", len(wav), f.Size(), rec.DurationMS, err)
	}
	var left []byte
	for i := 44; i+4 <= len(wav); i += 4 {
		left = append(left, wav[i:i+2]...)
	}
	kept, end := keptAudio(t, as, store, ring, rec)
	if !rec.EndedAt.Equal(end.UTC().Truncate(time.Microsecond)) {
		t.Errorf("recovered recording ended %v, want the end of its last kept record, %v", rec.EndedAt, end)
	}
	// A frame is laid where it arrived, and one that arrived close after
	// it covers part of it: each kept frame whose first 100 samples no
	// later one covers is heard, and no frame the kept segments do not
	// hold is.
	keptAt := map[string]int{} // by payload, the caller's record index in kept
	for i, r := range kept {
		if r.Channel == recordings.ChannelCaller {
			keptAt[string(r.Payload)] = i
		}
	}
	heard, uncovered := 0, 0
	for n, p := range said {
		var want []byte
		for _, b := range p[:100] {
			want = binary.LittleEndian.AppendUint16(want, uint16(media.UlawToLinear(b)))
		}
		i, ok := keptAt[string(p)]
		played := bytes.Contains(left, want)
		if played {
			heard++
		}
		switch {
		case played && !ok:
			t.Errorf("the caller's frame %d plays but is not in the segments kept", n)
		case ok && !covered(kept, i, 100) && !played:
			t.Errorf("the caller's frame %d is kept and uncovered but does not play", n)
		}
		if ok && !covered(kept, i, 100) {
			uncovered++
		}
	}
	if len(keptAt) == 0 || uncovered == 0 {
		t.Errorf("the segments kept hold %d of the caller's frames, %d uncovered", len(keptAt), uncovered)
	}
	t.Logf("recovered %d ms in %d segments; %d of the caller's frames kept, %d uncovered, %d play", rec.DurationMS, rec.Segments, len(keptAt), uncovered, heard)
}

// waitSpoolSegments waits until the one recording in the spool folder dir
// holds at least n sealed segments, and returns how many it holds: the
// recorder writes each segment to the file as it seals it.
func waitSpoolSegments(t *testing.T, dir string, n int) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		parts, err := filepath.Glob(filepath.Join(dir, "*.part"))
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) == 1 {
			st, err := os.Stat(parts[0])
			if err != nil {
				t.Fatal(err)
			}
			// The header is shorter than a segment.
			if whole := int(st.Size() / recordings.SegmentSize); whole >= n {
				return whole
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the spool (%v) never held %d whole segments", parts, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// keptAudio is what a recording's stored object holds: its audio records
// in order, and the end of the last one's audio.
func keptAudio(t *testing.T, ctx context.Context, store recordings.Store, ring *recordings.Keyring, rec *sb.Recording) ([]recordings.Record, time.Time) {
	t.Helper()
	obj, err := store.Open(ctx, rec.ObjectKey)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	key, err := ring.Unwrap(rec.KeyVersion, rec.WrappedKey, rec.ID[:])
	if err != nil {
		t.Fatal(err)
	}
	r, err := recordings.NewReader(obj, obj.Size(), key, recordings.Meta{TenantID: rec.TenantID, CallID: rec.CallID, RecordingID: rec.ID})
	if err != nil {
		t.Fatal(err)
	}
	if r.Segments() != rec.Segments {
		t.Errorf("the object holds %d segments, its record says %d", r.Segments(), rec.Segments)
	}
	var kept []recordings.Record
	end := r.Meta().Start
	for i := range r.Segments() {
		recs, err := r.Segment(i)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range recs {
			if x.Kind != recordings.KindAudio {
				continue
			}
			kept = append(kept, x)
			if e := x.At.Add(time.Duration(len(x.Payload)) * time.Second / time.Duration(r.Meta().ClockRate)); e.After(end) {
				end = e
			}
		}
	}
	return kept, end
}

// covered reports whether a record of the same channel after kept[i]
// (laid over it when played) covers any of its first n samples, at 8 kHz;
// a sample's margin either side allows for rounding.
func covered(kept []recordings.Record, i, n int) bool {
	const sample = time.Second / 8000
	from, to := kept[i].At.Add(-sample), kept[i].At.Add(time.Duration(n+1)*sample)
	for _, x := range kept[i+1:] {
		if x.Channel != kept[i].Channel {
			continue
		}
		if x.At.Before(to) && x.At.Add(time.Duration(len(x.Payload))*sample).After(from) {
			return true
		}
	}
	return false
}
