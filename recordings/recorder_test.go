package recordings

import (
	"bytes"
	"context"
	"encoding/base64"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

func mustKeyring(t testing.TB) *Keyring {
	t.Helper()
	k, err := ParseKeyring("1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRecorderSealsBothChannels(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ring, m := mustKeyring(t), testMeta()
			rec, err := StartRecorder(ctx, st, ring, m)
			if err != nil {
				t.Fatal(err)
			}
			// Both directions tap at once, as the bridge's two read loops do.
			var wg sync.WaitGroup
			for _, fromCaller := range []bool{true, false} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					payload := make([]byte, 160)
					for i := 0; i < 100; i++ {
						payload[0], payload[1] = byte(i), 0
						if fromCaller {
							payload[1] = 1
						}
						rec.Tap(fromCaller, payload, m.Start.Add(time.Duration(i)*20*time.Millisecond))
						payload[0] = 0xEE // the tap must have copied
						if i%20 == 19 {
							time.Sleep(time.Millisecond) // let the queue drain, as 20 ms pacing would
						}
					}
				}()
			}
			wg.Wait()
			rec.Pause(m.Start.Add(3 * time.Second))
			rec.Resume(m.Start.Add(4 * time.Second))
			res, err := rec.Finish(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if res.Dropped != 0 || res.Segments != 1 || res.ObjectKey != ObjectKey(m.TenantID, m.RecordingID) || res.KeyVersion != 1 {
				t.Fatalf("result %+v", res)
			}

			dataKey, err := ring.Unwrap(res.KeyVersion, res.WrappedKey, m.RecordingID[:])
			if err != nil {
				t.Fatal(err)
			}
			obj, err := st.Open(ctx, res.ObjectKey)
			if err != nil {
				t.Fatal(err)
			}
			defer obj.Close()
			if obj.Size() != res.Size {
				t.Errorf("object %d bytes, recorder says %d", obj.Size(), res.Size)
			}
			r, err := NewReader(obj, obj.Size(), dataKey, m)
			if err != nil {
				t.Fatal(err)
			}
			next := map[uint8]int{}
			var pauses []Kind
			err = r.Records(func(rc Record) error {
				switch rc.Kind {
				case KindAudio:
					want := uint8(0)
					if rc.Channel == ChannelCaller {
						want = 1
					}
					if int(rc.Payload[0]) != next[rc.Channel] || rc.Payload[1] != want {
						t.Fatalf("channel %d frame %d holds %x", rc.Channel, next[rc.Channel], rc.Payload[:2])
					}
					next[rc.Channel]++
				default:
					pauses = append(pauses, rc.Kind)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if next[ChannelCaller] != 100 || next[ChannelOperator] != 100 || len(pauses) != 2 || pauses[0] != KindPause {
				t.Errorf("read %v frames and marks %v", next, pauses)
			}
		})
	}
}

func TestRecorderDestroyLeavesNothing(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			m := testMeta()
			rec, err := StartRecorder(ctx, st, mustKeyring(t), m)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 50; i++ {
				rec.Tap(true, make([]byte, 160), time.Now())
			}
			if err := rec.Destroy(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Open(ctx, ObjectKey(m.TenantID, m.RecordingID)); sb.ErrorCode(err) != sb.ENOTFOUND {
				t.Errorf("withdrawn recording left an object: %v", err)
			}
			rec.Tap(true, make([]byte, 160), time.Now()) // a late tap after withdrawal is ignored
		})
	}
}

// BenchmarkRecorderTap is what a recording adds to each relayed packet on
// the bridge's goroutine.
func BenchmarkRecorderTap(b *testing.B) {
	dir, _ := NewDirStore(b.TempDir())
	rec, err := StartRecorder(context.Background(), dir, mustKeyring(b), testMeta())
	if err != nil {
		b.Fatal(err)
	}
	payload, at := make([]byte, 160), time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec.Tap(i%2 == 0, payload, at)
		if i%(tapQueue/2) == tapQueue/2-1 {
			// The taps of a second of a call; the recorder's goroutine
			// takes them (the kick woke it) before the next second.
			b.StopTimer()
			for queued := tapQueue; queued > 0; time.Sleep(10 * time.Microsecond) {
				rec.mu.Lock()
				queued = len(rec.queue.recs)
				rec.mu.Unlock()
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	res, err := rec.Finish(context.Background())
	if err != nil || res.Dropped != 0 {
		b.Fatalf("finish: %d dropped, %v", res.Dropped, err)
	}
}

// Destroy zeroes the plaintext it drops: the segment the writer had not
// sealed yet and the batches the taps filled.
func TestDestroyZeroesThePlaintext(t *testing.T) {
	dir, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m := testMeta()
	rec, err := StartRecorder(ctx, dir, mustKeyring(t), m)
	if err != nil {
		t.Fatal(err)
	}
	said := bytes.Repeat([]byte{0x5a}, 160)
	for i := 0; i < 60; i++ {
		rec.Tap(i%2 == 0, said, m.Start.Add(time.Duration(i)*10*time.Millisecond))
	}
	time.Sleep(3 * drainEvery) // one batch sealed into the writer's segment, its bytes spare
	for i := 0; i < 60; i++ {
		rec.Tap(i%2 == 0, said, m.Start.Add(time.Duration(60+i)*10*time.Millisecond))
	}
	if err := rec.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"the writer's segment": rec.w.buf[:cap(rec.w.buf)],
		"the taps' queue":      rec.queue.bytes[:cap(rec.queue.bytes)],
		"the spare batch":      rec.spare.bytes[:cap(rec.spare.bytes)],
	} {
		if bytes.Contains(b, said[:16]) {
			t.Errorf("%s still holds what was said after Destroy", name)
		}
	}
	if err := rec.w.Write(Record{Kind: KindAudio, Payload: said}); err == nil {
		t.Error("the destroyed recording's writer takes records")
	}
}
