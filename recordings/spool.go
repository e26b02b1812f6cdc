package recordings

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	sb "github.com/switchboard-voice/switchboard"
)

// SpoolStore puts a local folder in front of a remote store. A recording
// is written to a spool file as the call goes on (ciphertext only, like
// everything else here), and uploaded whole when it completes. If the
// remote store is unreachable the file waits, and Flush uploads it when
// the store is back. After a crash, Recover turns what a call left behind
// into a recording that holds its complete segments and reads as
// truncated. A recording in progress costs about 200 KiB of memory, not
// the 5 MiB of an S3 part.
type SpoolStore struct {
	dir     string
	backend Store
	gone    func(ctx context.Context, key string) (bool, error)

	// An upload from the spool and a Delete of the same key take turns,
	// so that a flush cannot put back an object deleted meanwhile.
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	users int
}

// lock takes key's turn and returns its release.
func (s *SpoolStore) lock(key string) func() {
	s.mu.Lock()
	if s.locks == nil {
		s.locks = map[string]*keyLock{}
	}
	l := s.locks[key]
	if l == nil {
		l = &keyLock{}
		s.locks[key] = l
	}
	l.users++
	s.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		s.mu.Lock()
		if l.users--; l.users == 0 {
			delete(s.locks, key)
		}
		s.mu.Unlock()
	}
}

// SetGone gives the spool a way to learn that a recording was destroyed
// elsewhere (another instance, while this one uploaded it): after each
// upload from the spool it asks, and deletes what it uploaded if so. Call
// it before the first Flush.
func (s *SpoolStore) SetGone(gone func(ctx context.Context, key string) (bool, error)) { s.gone = gone }

// AbortUploads aborts the lost multipart uploads of the S3 store behind
// the spool (S3Store.AbortUploads); none for another store.
func (s *SpoolStore) AbortUploads(ctx context.Context, olderThan time.Time, lost func(ctx context.Context, key string) (bool, error)) (int, error) {
	if b, ok := s.backend.(*S3Store); ok {
		return b.AbortUploads(ctx, olderThan, lost)
	}
	return 0, nil
}

var _ Store = (*SpoolStore)(nil)

// Spool file suffixes: a call still writing, and a recording waiting to
// be uploaded.
const (
	partSuffix  = ".part"
	readySuffix = ".ready"
)

// NewSpoolStore returns a store that spools into dir, which must be on a
// local disk, before uploading to backend.
func NewSpoolStore(dir string, backend Store) (*SpoolStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("recordings: spool folder: %w", err)
	}
	return &SpoolStore{dir: dir, backend: backend}, nil
}

// spoolName names a recording's spool file after its object key, so that
// what a crash leaves behind still says where it belongs.
func (s *SpoolStore) spoolName(key, suffix string) string {
	return filepath.Join(s.dir, hex.EncodeToString([]byte(key))+suffix)
}

type spoolUpload struct {
	s   *SpoolStore
	key string
	f   *os.File
	bw  *bufio.Writer

	// With S3 behind the spool, parts go up as the call proceeds, read
	// back from the spool file: remote is that multipart upload, sent how
	// much of the file it has. Any failure drops it, and the whole file is
	// uploaded later instead.
	remote  *s3Upload
	written int64
	sent    int64
}

func (s *SpoolStore) Create(ctx context.Context, key string) (Upload, error) {
	f, err := os.OpenFile(s.spoolName(key, partSuffix), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("recordings: spool: %w", err)
	}
	u := &spoolUpload{s: s, key: key, f: f, bw: bufio.NewWriterSize(f, 64<<10)}
	if s3, ok := s.backend.(*S3Store); ok {
		// The call's context ends with the call; the upload must not.
		if up, err := s3.Create(context.WithoutCancel(ctx), key); err == nil {
			u.remote = up.(*s3Upload)
		}
	}
	return u, nil
}

// Write takes the header or one sealed segment, and passes it to the file
// at once: a process killed after a segment was sealed leaves it in the
// file for Recover (the page cache keeps it; a power loss wants the
// Complete's fsync).
func (u *spoolUpload) Write(p []byte) (int, error) {
	n, err := u.bw.Write(p)
	if err == nil {
		err = u.bw.Flush()
	}
	u.written += int64(n)
	if err == nil && u.remote != nil && u.written-u.sent >= int64(u.remote.s.partSize) {
		u.sendParts()
	}
	return n, err
}

// sendParts uploads every whole part the spool file holds beyond what was
// sent.
func (u *spoolUpload) sendParts() {
	if err := u.bw.Flush(); err != nil {
		u.dropRemote()
		return
	}
	size := int64(u.remote.s.partSize)
	for u.remote != nil && u.written-u.sent >= size {
		if err := u.remote.putPartFrom(io.NewSectionReader(u.f, u.sent, size)); err != nil {
			u.dropRemote()
			return
		}
		u.sent += size
	}
}

// dropRemote gives up on uploading during the call.
func (u *spoolUpload) dropRemote() {
	if u.remote != nil {
		u.remote.Abort(context.Background())
		u.remote = nil
	}
}

// finishRemote uploads the rest of the file as the last part and
// completes the multipart upload.
func (u *spoolUpload) finishRemote(ctx context.Context) error {
	u.remote.ctx = ctx
	if tail := u.written - u.sent; tail > 0 || len(u.remote.parts) == 0 {
		if err := u.remote.putPartFrom(io.NewSectionReader(u.f, u.sent, tail)); err != nil {
			return err
		}
	}
	return u.remote.Complete(ctx)
}

// Complete makes the spooled recording durable and uploads what remains.
// A remote store that is down is not a failure: the recording waits for
// Flush.
func (u *spoolUpload) Complete(ctx context.Context) error {
	if err := u.bw.Flush(); err != nil {
		u.f.Close()
		return fmt.Errorf("recordings: spool: %w", err)
	}
	if err := u.f.Sync(); err != nil {
		u.f.Close()
		return fmt.Errorf("recordings: spool: %w", err)
	}
	if u.remote != nil {
		if err := u.finishRemote(ctx); err == nil {
			u.f.Close()
			if err := os.Remove(u.f.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("recordings: spool: %w", err)
			}
			return nil
		}
		u.dropRemote()
	}
	if err := u.f.Close(); err != nil {
		return fmt.Errorf("recordings: spool: %w", err)
	}
	ready := u.s.spoolName(u.key, readySuffix)
	if err := os.Rename(u.f.Name(), ready); err != nil {
		return fmt.Errorf("recordings: spool: %w", err)
	}
	u.s.upload(ctx, ready) // on failure the file stays for Flush
	return nil
}

func (u *spoolUpload) Abort(context.Context) error {
	u.dropRemote()
	u.f.Close()
	if err := os.Remove(u.f.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("recordings: spool: %w", err)
	}
	return nil
}

// upload sends one ready spool file to the backend and removes it. A
// Delete of the key waits for it, or it finds the file gone; and a
// recording destroyed elsewhere meanwhile has its object deleted again.
func (s *SpoolStore) upload(ctx context.Context, ready string) error {
	raw, err := hex.DecodeString(strings.TrimSuffix(filepath.Base(ready), readySuffix))
	if err != nil {
		return fmt.Errorf("recordings: spool file %s: bad name", filepath.Base(ready))
	}
	key := string(raw)
	defer s.lock(key)()
	f, err := os.Open(ready)
	if errors.Is(err, os.ErrNotExist) {
		return nil // deleted since it was listed
	}
	if err != nil {
		return fmt.Errorf("recordings: spool: %w", err)
	}
	defer f.Close()
	up, err := s.backend.Create(ctx, key)
	if err != nil {
		return err
	}
	if _, err := io.Copy(up, f); err != nil {
		return errors.Join(err, up.Abort(context.WithoutCancel(ctx)))
	}
	if err := up.Complete(ctx); err != nil {
		return errors.Join(err, up.Abort(context.WithoutCancel(ctx)))
	}
	if s.gone != nil {
		// Destroy erases the record's key before it deletes the object,
		// so a destruction this check misses deletes what was uploaded.
		if gone, err := s.gone(ctx, key); err != nil || gone {
			if err == nil {
				err = s.backend.Delete(ctx, key)
			}
			if err != nil {
				return err
			}
		}
	}
	return os.Remove(ready)
}

// Flush uploads every recording waiting in the spool. It returns how many
// are still waiting and the first error.
func (s *SpoolStore) Flush(ctx context.Context) (pending int, err error) {
	ready, err := filepath.Glob(filepath.Join(s.dir, "*"+readySuffix))
	if err != nil {
		return 0, err
	}
	for _, f := range ready {
		if uerr := s.upload(ctx, f); uerr != nil {
			pending++
			err = cmpErr(err, uerr)
		}
	}
	return pending, err
}

func cmpErr(first, next error) error {
	if first != nil {
		return first
	}
	return next
}

// Recover readies the spool files of calls that were in progress when the
// process died: each is cut back to its last whole segment, so it reads as
// a truncated recording whose segments all open. Call it at start, before
// any recording begins. It returns the object keys it recovered.
func (s *SpoolStore) Recover() ([]string, error) {
	parts, err := filepath.Glob(filepath.Join(s.dir, "*"+partSuffix))
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, p := range parts {
		whole, err := wholeSegments(p)
		if err != nil {
			return keys, err
		}
		if whole == 0 {
			os.Remove(p) // no whole segment: nothing to keep
			continue
		}
		if err := os.Truncate(p, whole); err != nil {
			return keys, fmt.Errorf("recordings: recover %s: %w", filepath.Base(p), err)
		}
		base := strings.TrimSuffix(p, partSuffix)
		if err := os.Rename(p, base+readySuffix); err != nil {
			return keys, fmt.Errorf("recordings: recover: %w", err)
		}
		raw, _ := hex.DecodeString(filepath.Base(base))
		keys = append(keys, string(raw))
	}
	return keys, nil
}

// wholeSegments is the length of the file at p up to its last whole
// segment, or 0 if it holds none.
func wholeSegments(p string) (int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	hs := int64(headerSize)
	var m [8]byte
	if _, err := f.ReadAt(m[:], 0); err == nil && string(m[:]) == magicV1 {
		hs = headerSizeV1
	}
	if st.Size() < hs+SegmentSize {
		return 0, nil
	}
	return hs + (st.Size()-hs)/SegmentSize*SegmentSize, nil
}

// Pending counts recordings waiting in the spool for the remote store.
func (s *SpoolStore) Pending() int {
	ready, _ := filepath.Glob(filepath.Join(s.dir, "*"+readySuffix))
	return len(ready)
}

// Open reads the recording from the remote store, or from the spool while
// it waits there.
func (s *SpoolStore) Open(ctx context.Context, key string) (Object, error) {
	obj, err := s.backend.Open(ctx, key)
	if sb.ErrorCode(err) != sb.ENOTFOUND {
		return obj, err
	}
	f, ferr := os.Open(s.spoolName(key, readySuffix))
	if ferr != nil {
		return nil, err
	}
	st, ferr := f.Stat()
	if ferr != nil {
		f.Close()
		return nil, err
	}
	return dirObject{File: f, size: st.Size()}, nil
}

// Delete removes the recording from the spool and the remote store,
// after any upload of it from the spool.
func (s *SpoolStore) Delete(ctx context.Context, key string) error {
	defer s.lock(key)()
	for _, suffix := range []string{partSuffix, readySuffix} {
		if err := os.Remove(s.spoolName(key, suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("recordings: spool: %w", err)
		}
	}
	return s.backend.Delete(ctx, key)
}

// Ping checks the store behind the spool, for readiness: recordings still
// spool while it is down, but they pile up.
func (s *SpoolStore) Ping(ctx context.Context) error {
	if p, ok := s.backend.(interface{ Ping(context.Context) error }); ok {
		return p.Ping(ctx)
	}
	return nil
}
