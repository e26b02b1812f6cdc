package recordings

import (
	"bytes"
	"context"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/testenv"
)

// stores returns each Store implementation against a real backend: the
// S3 API of versitygw, and a folder.
func stores(t *testing.T) map[string]Store {
	t.Helper()
	s3srv := testenv.NewS3(t)
	s3, err := NewS3Store(context.Background(), S3Config{Endpoint: s3srv.Endpoint, Bucket: s3srv.Bucket, AccessKey: s3srv.AccessKey, SecretKey: s3srv.SecretKey, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return map[string]Store{"s3": s3, "dir": dir}
}

func TestStoresKeepSealedRecordings(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			key, _ := NewDataKey()
			m := testMeta()
			objKey := ObjectKey(m.TenantID, m.RecordingID)
			up, err := st.Create(ctx, objKey)
			if err != nil {
				t.Fatal(err)
			}
			// Enough audio for three multipart parts of 5 MiB.
			w, err := NewWriter(up, key, m)
			if err != nil {
				t.Fatal(err)
			}
			var want []Record
			payload := make([]byte, 160)
			for i := 0; i < 70000; i++ {
				payload[0], payload[1] = byte(i), byte(i>>8)
				r := Record{Kind: KindAudio, Channel: uint8(i % 2), At: m.Start.Add(time.Duration(i) * 10 * time.Millisecond), Payload: append([]byte(nil), payload...)}
				if err := w.Write(r); err != nil {
					t.Fatal(err)
				}
				want = append(want, r)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Open(ctx, objKey); sb.ErrorCode(err) != sb.ENOTFOUND {
				t.Fatalf("object visible before the upload completed: %v", err)
			}
			if err := up.Complete(ctx); err != nil {
				t.Fatal(err)
			}

			obj, err := st.Open(ctx, objKey)
			if err != nil {
				t.Fatal(err)
			}
			defer obj.Close()
			if obj.Size() < 2*MinPartSize {
				t.Fatalf("object of %d bytes, want more than two parts", obj.Size())
			}
			r, err := NewReader(obj, obj.Size(), key, m)
			if err != nil {
				t.Fatal(err)
			}
			// One segment from the middle, read alone by range.
			mid, err := r.Segment(r.Segments() / 2)
			if err != nil || len(mid) == 0 {
				t.Fatalf("middle segment: %d records, %v", len(mid), err)
			}
			var got []Record
			if err := r.Records(func(rec Record) error {
				rec.Payload = append([]byte(nil), rec.Payload...)
				got = append(got, rec)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			sameRecords(t, got, want)

			if err := st.Delete(ctx, objKey); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Open(ctx, objKey); sb.ErrorCode(err) != sb.ENOTFOUND {
				t.Errorf("object still there after delete: %v", err)
			}
		})
	}
}

func TestAbortedUploadLeavesNothing(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			objKey := ObjectKey(sb.NewID(), sb.NewID())
			up, err := st.Create(ctx, objKey)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := up.Write(bytes.Repeat([]byte{1}, MinPartSize+10)); err != nil {
				t.Fatal(err)
			}
			if err := up.Abort(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Open(ctx, objKey); sb.ErrorCode(err) != sb.ENOTFOUND {
				t.Errorf("an aborted upload left an object: %v", err)
			}
		})
	}
}

func TestDirStoreRefusesKeysOutsideIt(t *testing.T) {
	st, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(context.Background(), "../escape"); sb.ErrorCode(err) != sb.EINVALID {
		t.Errorf("Create(../escape) = %v, want EINVALID", err)
	}
	if k := ObjectKey(sb.NewID(), sb.NewID()); !bytes.HasPrefix([]byte(k), []byte("tenants/")) || bytes.ContainsAny([]byte(k), "+@") {
		t.Errorf("object key %q", k)
	}
}

func TestMain(m *testing.M) { testenv.Main(m) }

// BenchmarkRecordOneMinuteToS3 seals and uploads one minute of a call, both
// channels (6,000 G.711 frames, about 1 MB), to a real S3 server per
// operation: MB/s is sealing plus upload throughput and ops/s recordings
// per second, to read next to BenchmarkRawAEAD. (A live recording is fed
// through the Recorder's tap at 50 frames a second per channel; this
// writes as fast as the store takes it.)
func BenchmarkRecordOneMinuteToS3(b *testing.B) {
	st := mustBenchS3(b)
	b.SetBytes(6000 * (recordHeader + 160))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		recordOneMinute(b, st)
	}
}

// BenchmarkRecordOneMinuteToS3Parallel is the same with several
// recordings going up at once, as when many recorded calls end together.
func BenchmarkRecordOneMinuteToS3Parallel(b *testing.B) {
	st := mustBenchS3(b)
	b.SetBytes(6000 * (recordHeader + 160))
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			recordOneMinute(b, st)
		}
	})
}

func mustBenchS3(b *testing.B) *S3Store {
	s3srv := testenv.NewS3(b)
	st, err := NewS3Store(context.Background(), S3Config{Endpoint: s3srv.Endpoint, Bucket: s3srv.Bucket, AccessKey: s3srv.AccessKey, SecretKey: s3srv.SecretKey, PathStyle: true})
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// recordOneMinute seals and stores one minute of a two-channel call.
func recordOneMinute(b *testing.B, st *S3Store) {
	ctx := context.Background()
	key, _ := NewDataKey()
	m := testMeta()
	m.RecordingID = sb.NewID()
	rec := Record{Kind: KindAudio, At: m.Start, Payload: make([]byte, 160)}
	up, err := st.Create(ctx, ObjectKey(m.TenantID, m.RecordingID))
	if err != nil {
		b.Fatal(err)
	}
	w, err := NewWriter(up, key, m)
	if err != nil {
		b.Fatal(err)
	}
	for j := 0; j < 6000; j++ {
		rec.Channel = uint8(j % 2)
		if err := w.Write(rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	if err := up.Complete(ctx); err != nil {
		b.Fatal(err)
	}
}
