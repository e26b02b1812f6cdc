package recordings

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	sb "github.com/switchboard-voice/switchboard"
)

// gatedStore is an S3 store that can be down, and whose uploads can be
// held just before they complete.
type gatedStore struct {
	*S3Store
	down     atomic.Bool
	gate     atomic.Pointer[chan struct{}] // closed to let a held upload complete
	entered  chan struct{}                 // an upload is held
	complete atomic.Int32
}

func (g *gatedStore) Create(ctx context.Context, key string) (Upload, error) {
	if g.down.Load() {
		return nil, errors.New("connection refused")
	}
	up, err := g.S3Store.Create(ctx, key)
	if err != nil {
		return nil, err
	}
	return &gatedUpload{Upload: up, g: g}, nil
}

type gatedUpload struct {
	Upload
	g *gatedStore
}

func (u *gatedUpload) Complete(ctx context.Context) error {
	if gate := u.g.gate.Load(); gate != nil {
		u.g.entered <- struct{}{}
		<-*gate
	}
	u.g.complete.Add(1)
	return u.Upload.Complete(ctx)
}

// spooledAndWaiting records a call into a spool whose store is down: the
// recording waits there, ready, for a flush.
func spooledAndWaiting(t *testing.T, w *world, spool *SpoolStore, g *gatedStore) (*Service, *active) {
	t.Helper()
	svc := w.service(spool)
	_, rec := w.beginWith(t, svc, sb.PCMU)
	talk(rec, 0, 400, 160)
	g.down.Store(true)
	w.now = w.start.Add(8 * time.Second)
	if _, err := rec.Finish(w.admin); err != nil {
		t.Fatal(err)
	}
	g.down.Store(false)
	if spool.Pending() != 1 {
		t.Fatalf("%d recordings waiting in the spool, want 1", spool.Pending())
	}
	return svc, rec
}

// hold makes the next upload wait before it completes, and returns the
// function that lets it go.
func (g *gatedStore) hold() (release func()) {
	gate := make(chan struct{})
	g.entered = make(chan struct{}, 1)
	g.gate.Store(&gate)
	return func() {
		g.gate.Store(nil)
		close(gate)
	}
}

// A flush of the spool that is uploading a recording when it is destroyed
// cannot put the object back: on this instance the destruction waits for
// the upload, and a destruction on another instance is found after it.
func TestSpoolFlushRacingDestroyCannotReupload(t *testing.T) {
	for _, where := range []string{"here", "on another instance"} {
		t.Run(where, func(t *testing.T) {
			w := mustWorld(t)
			g := &gatedStore{S3Store: w.backend}
			spool, err := NewSpoolStore(t.TempDir(), g)
			if err != nil {
				t.Fatal(err)
			}
			svc, rec := spooledAndWaiting(t, w, spool, g)
			spool.SetGone(svc.Destroyed)
			destroyer := svc
			if where != "here" {
				other, err := NewSpoolStore(t.TempDir(), w.backend)
				if err != nil {
					t.Fatal(err)
				}
				destroyer = w.service(other)
			}

			release := g.hold()
			flushed := make(chan error, 1)
			go func() {
				_, err := spool.Flush(w.admin)
				flushed <- err
			}()
			<-g.entered // the upload is under way
			row := w.row(t, rec.rec.ID)
			destroyed := make(chan error, 1)
			go func() { destroyed <- destroyer.Destroy(w.admin, row, "erasure request") }()
			select {
			case err := <-destroyed: // it did not wait (another instance): its delete found nothing
				destroyed <- err
			case <-time.After(200 * time.Millisecond): // it waits for the upload
			}
			release()
			if err := <-flushed; err != nil {
				t.Fatalf("Flush: %v", err)
			}
			if err := <-destroyed; err != nil {
				t.Fatalf("Destroy: %v", err)
			}
			if g.complete.Load() != 1 {
				t.Fatalf("%d uploads completed, want the one raced", g.complete.Load())
			}
			if _, err := w.backend.Open(w.admin, rec.rec.ObjectKey); sb.ErrorCode(err) != sb.ENOTFOUND {
				t.Errorf("the destroyed recording's object is in the bucket: %v", err)
			}
			if spool.Pending() != 0 {
				t.Errorf("%d left in the spool", spool.Pending())
			}
		})
	}
}

// The multipart upload a crash lost is aborted: found under the
// recordings' prefix once its recording is no longer being made, while a
// recording in progress keeps its upload.
func TestLostUploadsAborted(t *testing.T) {
	w := mustWorld(t)
	uploads := func() map[string]bool {
		out, err := w.backend.c.ListMultipartUploads(w.admin, &s3.ListMultipartUploadsInput{Bucket: &w.backend.bucket, Prefix: aws.String(recordingsPrefix)})
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string]bool{}
		for _, u := range out.Uploads {
			keys[aws.ToString(u.Key)] = true
		}
		return keys
	}
	_, crashed := w.begin(t, sb.PCMU)
	_, live := w.begin(t, sb.PCMU)
	talk(crashed, 0, 700, 160)
	crash(crashed)
	if up := uploads(); !up[crashed.rec.ObjectKey] || !up[live.rec.ObjectKey] {
		t.Fatalf("uploads in progress: %v, want both recordings'", up)
	}
	again, err := NewSpoolStore(w.spoolAt, w.backend)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := again.Recover()
	if err != nil {
		t.Fatal(err)
	}
	svc := w.service(again)
	if n, err := svc.Recovered(w.admin, keys); n != 1 || err != nil {
		t.Fatalf("Recovered: %d, %v", n, err)
	}
	// Uploads begun in the last minute are left alone: their records may
	// not be written yet.
	w.now = time.Now()
	if n, err := svc.AbortLostUploads(w.admin, again.AbortUploads); n != 0 || err != nil {
		t.Fatalf("AbortLostUploads of recent ones: %d, %v", n, err)
	}
	w.now = time.Now().Add(uploadGrace + time.Second)
	if n, err := svc.AbortLostUploads(w.admin, again.AbortUploads); n != 1 || err != nil {
		t.Fatalf("AbortLostUploads: %d, %v", n, err)
	}
	if up := uploads(); up[crashed.rec.ObjectKey] || !up[live.rec.ObjectKey] {
		t.Errorf("uploads left: %v; want only the live recording's", up)
	}
	talk(live, 0, 50, 160)
	w.now = w.start.Add(time.Second)
	if _, err := live.Finish(w.admin); err != nil {
		t.Errorf("the live recording after the abort: %v", err)
	}
}
