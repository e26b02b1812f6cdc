package recordings

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	sb "github.com/switchboard-voice/switchboard"
	"github.com/switchboard-voice/switchboard/internal/testenv"
)

func mustS3Backend(t *testing.T) (*testenv.S3, *S3Store) {
	t.Helper()
	srv := testenv.NewS3(t)
	st, err := NewS3Store(context.Background(), S3Config{Endpoint: srv.Endpoint, Bucket: srv.Bucket, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	return srv, st
}

// Storage down during a call, then back: the recording arrives whole.
func TestSpoolCarriesARecordingThroughAnOutage(t *testing.T) {
	srv, backend := mustS3Backend(t)
	spoolDir := t.TempDir()
	spool, err := NewSpoolStore(spoolDir, backend)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ring, m := mustKeyring(t), testMeta()

	srv.Stop()
	rec, err := StartRecorder(ctx, spool, ring, m)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 400; i++ {
		rec.Tap(i%2 == 0, bytes.Repeat([]byte{byte(i)}, 160), m.Start.Add(time.Duration(i)*10*time.Millisecond))
		if i%50 == 49 {
			time.Sleep(time.Millisecond)
		}
	}
	res, err := rec.Finish(ctx)
	if err != nil {
		t.Fatalf("finishing while the store is down: %v", err)
	}
	if spool.Pending() != 1 {
		t.Fatalf("%d recordings waiting in the spool, want 1", spool.Pending())
	}
	// Readable from the spool meanwhile; nothing in it is plaintext.
	b, err := os.ReadFile(spool.spoolName(res.ObjectKey, readySuffix))
	if err != nil || bytes.Contains(b, bytes.Repeat([]byte{9}, 160)) {
		t.Fatalf("spool file: %v (or it holds plaintext)", err)
	}

	srv.Start()
	if pending, err := spool.Flush(ctx); pending != 0 || err != nil {
		t.Fatalf("Flush after the store came back: %d pending, %v", pending, err)
	}
	obj, err := backend.Open(ctx, res.ObjectKey)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	key, err := ring.Unwrap(res.KeyVersion, res.WrappedKey, m.RecordingID[:])
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAllFrom(obj, key, m)
	if err != nil || len(got) != 400 {
		t.Fatalf("uploaded recording: %d records, %v", len(got), err)
	}
	if left, _ := filepath.Glob(filepath.Join(spoolDir, "*")); len(left) != 0 {
		t.Errorf("spool not empty after upload: %v", left)
	}
}

// A crash mid-call leaves a recording whose whole segments open and which
// reads as truncated, never a silently broken one.
func TestSpoolRecoversACrashedRecording(t *testing.T) {
	_, backend := mustS3Backend(t)
	spoolDir := t.TempDir()
	spool, err := NewSpoolStore(spoolDir, backend)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key, _ := NewDataKey()
	m := testMeta()
	objKey := ObjectKey(m.TenantID, m.RecordingID)
	up, err := spool.Create(ctx, objKey)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(up, key, m)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ { // a few segments, the last one partly written
		if err := w.Write(Record{Kind: KindAudio, At: m.Start, Payload: make([]byte, 160)}); err != nil {
			t.Fatal(err)
		}
	}
	up.(*spoolUpload).bw.Flush() // what had reached the disk when the process died
	up.(*spoolUpload).f.Close()

	// The next start.
	again, err := NewSpoolStore(spoolDir, backend)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := again.Recover()
	if err != nil || len(keys) != 1 || keys[0] != objKey {
		t.Fatalf("Recover = %v, %v", keys, err)
	}
	if pending, err := again.Flush(ctx); pending != 0 || err != nil {
		t.Fatalf("Flush: %d, %v", pending, err)
	}
	obj, err := backend.Open(ctx, objKey)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	r, err := NewReader(obj, obj.Size(), key, m)
	if err != nil {
		t.Fatal(err)
	}
	if r.Segments() < 2 {
		t.Fatalf("%d whole segments recovered, want the ones written", r.Segments())
	}
	for i := 0; i < r.Segments()-1; i++ {
		if _, err := r.Segment(i); err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
	}
	if err := r.Records(func(Record) error { return nil }); !errors.Is(err, ErrTruncated) {
		t.Errorf("reading the recovered recording: %v, want ErrTruncated", err)
	}
	if _, err := again.Open(ctx, ObjectKey(sb.NewID(), sb.NewID())); sb.ErrorCode(err) != sb.ENOTFOUND {
		t.Errorf("unknown key: %v", err)
	}
}

func readAllFrom(obj Object, key []byte, m Meta) ([]Record, error) {
	r, err := NewReader(obj, obj.Size(), key, m)
	if err != nil {
		return nil, err
	}
	var out []Record
	err = r.Records(func(rec Record) error {
		out = append(out, rec)
		return nil
	})
	return out, err
}

func TestParseObjectKey(t *testing.T) {
	tenant, rec := sb.NewID(), sb.NewID()
	if gt, gr, ok := ParseObjectKey(ObjectKey(tenant, rec)); !ok || gt != tenant || gr != rec {
		t.Errorf("ParseObjectKey(ObjectKey) = %v %v %v", gt, gr, ok)
	}
	for _, bad := range []string{"", "tenants/x/recordings/y.sbrec", "other/" + tenant.String() + "/recordings/" + rec.String() + ".sbrec", ObjectKey(tenant, rec) + ".tmp"} {
		if _, _, ok := ParseObjectKey(bad); ok {
			t.Errorf("ParseObjectKey(%q) accepted", bad)
		}
	}
}

// With S3 up, a long recording's parts go up as the call proceeds, read
// back from the spool file, and the spool is empty when it completes.
func TestSpoolUploadsPartsDuringTheCall(t *testing.T) {
	_, backend := mustS3Backend(t)
	spoolDir := t.TempDir()
	spool, err := NewSpoolStore(spoolDir, backend)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := ObjectKey(sb.NewID(), sb.NewID())
	up, err := spool.Create(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{0x5a}, 64<<10)
	total := 0
	for total < 2*MinPartSize+100<<10 {
		if _, err := up.Write(chunk); err != nil {
			t.Fatal(err)
		}
		total += len(chunk)
	}
	if sent := up.(*spoolUpload).sent; sent != 2*MinPartSize {
		t.Fatalf("%d bytes uploaded during the call, want two whole parts (%d)", sent, 2*MinPartSize)
	}
	if err := up.Complete(ctx); err != nil {
		t.Fatal(err)
	}
	obj, err := backend.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	if obj.Size() != int64(total) {
		t.Errorf("object of %d bytes, want %d", obj.Size(), total)
	}
	tail := make([]byte, 10)
	if _, err := obj.ReadAt(tail, obj.Size()-10); err != nil || !bytes.Equal(tail, chunk[:10]) {
		t.Errorf("object tail %x, %v", tail, err)
	}
	if left, _ := filepath.Glob(filepath.Join(spoolDir, "*")); len(left) != 0 {
		t.Errorf("spool not empty: %v", left)
	}
}
