package recordings

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/logging"

	sb "github.com/switchboard-voice/switchboard"
)

// Store keeps sealed recordings. It only ever sees ciphertext.
type Store interface {
	// Create starts a new object at key, written as the call goes on.
	Create(ctx context.Context, key string) (Upload, error)
	// Open returns the object at key for random-access reads; ENOTFOUND
	// if there is none.
	Open(ctx context.Context, key string) (Object, error)
	// Delete removes the object; deleting a missing one is not an error.
	Delete(ctx context.Context, key string) error
}

// Upload is an object being written. Write takes the container's bytes;
// Complete makes the object visible; Abort leaves nothing behind.
type Upload interface {
	io.Writer
	Complete(ctx context.Context) error
	Abort(ctx context.Context) error
}

// Object is a stored recording, read by ranges.
type Object interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// ObjectKey names a recording's object. It holds IDs only: no number,
// name or other personal data goes into keys or object metadata.
func ObjectKey(tenantID, recordingID sb.ID) string {
	return "tenants/" + tenantID.String() + "/recordings/" + recordingID.String() + ".sbrec"
}

// ParseObjectKey returns the tenant and recording IDs in an object key.
func ParseObjectKey(key string) (tenantID, recordingID sb.ID, ok bool) {
	parts := strings.Split(key, "/")
	if len(parts) != 4 || parts[0] != "tenants" || parts[2] != "recordings" || !strings.HasSuffix(parts[3], ".sbrec") {
		return sb.ID{}, sb.ID{}, false
	}
	t, err1 := sb.ParseID(parts[1])
	r, err2 := sb.ParseID(strings.TrimSuffix(parts[3], ".sbrec"))
	return t, r, err1 == nil && err2 == nil
}

// MinPartSize is S3's smallest part but the last.
const MinPartSize = 5 << 20

// S3Config locates an S3-compatible bucket.
type S3Config struct {
	Endpoint string // e.g. http://127.0.0.1:7070; empty for AWS
	Region   string
	Bucket   string
	// AccessKey and SecretKey are static credentials. Without them the
	// SDK's default chain finds them: AWS_ACCESS_KEY_ID and
	// AWS_SECRET_ACCESS_KEY, a web identity token (EKS IRSA:
	// AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN), the shared config
	// files (AWS_PROFILE), ECS task or EC2 instance roles.
	AccessKey string
	SecretKey string
	PathStyle bool // MinIO, versitygw and most non-AWS servers want it
	PartSize  int  // default MinPartSize
}

// S3Store keeps recordings in an S3-compatible bucket with multipart
// uploads: a part goes up whenever PartSize bytes have been sealed.
type S3Store struct {
	c        *s3.Client
	bucket   string
	partSize int
}

var _ Store = (*S3Store)(nil)

// NewS3Store returns a store for the bucket. Credentials are resolved
// when a request needs them (and refreshed as they expire), not here.
func NewS3Store(ctx context.Context, c S3Config) (*S3Store, error) {
	if c.Bucket == "" {
		return nil, errors.New("recordings: S3 bucket not set")
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		return nil, errors.New("recordings: an S3 access key and secret key go together; give both, or neither for the default credential chain")
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.PartSize == 0 {
		c.PartSize = MinPartSize
	}
	// The SDK's own logger writes plain lines to stderr, among the
	// service's JSON; what matters reaches the service as errors.
	load := []func(*config.LoadOptions) error{config.WithRegion(c.Region), config.WithLogger(logging.Nop{})}
	if c.AccessKey != "" {
		load = append(load, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey, "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("recordings: S3 configuration: %w", err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = c.PathStyle
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
	})
	return &S3Store{c: client, bucket: c.Bucket, partSize: c.PartSize}, nil
}

type s3Upload struct {
	s     *S3Store
	ctx   context.Context
	key   string
	id    *string
	buf   bytes.Buffer
	parts []types.CompletedPart
	err   error
}

// Create starts a multipart upload.
func (s *S3Store) Create(ctx context.Context, key string) (Upload, error) {
	out, err := s.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &s.bucket, Key: &key, ContentType: aws.String("application/octet-stream"),
	})
	if err != nil {
		return nil, fmt.Errorf("recordings: start upload: %w", err)
	}
	return &s3Upload{s: s, ctx: ctx, key: key, id: out.UploadId}, nil
}

func (u *s3Upload) Write(p []byte) (int, error) {
	if u.err != nil {
		return 0, u.err
	}
	u.buf.Write(p)
	for u.buf.Len() >= u.s.partSize {
		if u.err = u.putPart(u.buf.Next(u.s.partSize)); u.err != nil {
			return 0, u.err
		}
	}
	return len(p), nil
}

func (u *s3Upload) putPart(b []byte) error { return u.putPartFrom(bytes.NewReader(b)) }

// putPartFrom uploads the next part from body, which the SDK may seek to
// sign and retry: a section of a spool file is uploaded without holding
// the part in memory.
func (u *s3Upload) putPartFrom(body io.ReadSeeker) error {
	n := int32(len(u.parts) + 1)
	out, err := u.s.c.UploadPart(u.ctx, &s3.UploadPartInput{
		Bucket: &u.s.bucket, Key: &u.key, UploadId: u.id, PartNumber: &n, Body: body,
	})
	if err != nil {
		return fmt.Errorf("recordings: upload part %d: %w", n, err)
	}
	u.parts = append(u.parts, types.CompletedPart{ETag: out.ETag, PartNumber: &n})
	return nil
}

func (u *s3Upload) Complete(ctx context.Context) error {
	if u.err != nil {
		return u.err
	}
	u.ctx = ctx
	if u.buf.Len() > 0 || len(u.parts) == 0 {
		if err := u.putPart(u.buf.Bytes()); err != nil {
			return err
		}
		u.buf.Reset()
	}
	_, err := u.s.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &u.s.bucket, Key: &u.key, UploadId: u.id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: u.parts},
	})
	if err != nil {
		return fmt.Errorf("recordings: complete upload: %w", err)
	}
	return nil
}

func (u *s3Upload) Abort(ctx context.Context) error {
	_, err := u.s.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &u.s.bucket, Key: &u.key, UploadId: u.id})
	if err != nil {
		return fmt.Errorf("recordings: abort upload: %w", err)
	}
	return nil
}

type s3Object struct {
	s    *S3Store
	ctx  context.Context
	key  string
	size int64
}

// Open returns the object for ranged reads.
func (s *S3Store) Open(ctx context.Context, key string) (Object, error) {
	out, err := s.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		var nf *types.NotFound
		if errors.As(err, &nf) || strings.Contains(err.Error(), "StatusCode: 404") {
			return nil, sb.Errorf(sb.ENOTFOUND, "recording not found")
		}
		return nil, fmt.Errorf("recordings: head object: %w", err)
	}
	return &s3Object{s: s, ctx: ctx, key: key, size: aws.ToInt64(out.ContentLength)}, nil
}

func (o *s3Object) Size() int64  { return o.size }
func (o *s3Object) Close() error { return nil }

// ReadAt fetches exactly the bytes asked for with an HTTP Range request.
func (o *s3Object) ReadAt(p []byte, off int64) (int, error) {
	if off >= o.size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), o.size) - 1
	out, err := o.s.c.GetObject(o.ctx, &s3.GetObjectInput{
		Bucket: &o.s.bucket, Key: &o.key, Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, end)),
	})
	if err != nil {
		return 0, fmt.Errorf("recordings: read object: %w", err)
	}
	defer out.Body.Close()
	n, err := io.ReadFull(out.Body, p[:end-off+1])
	if err == nil && n < len(p) {
		err = io.EOF
	}
	return n, err
}

// recordingsPrefix is where every recording's object key begins.
const recordingsPrefix = "tenants/"

// AbortUploads aborts the multipart uploads of recordings begun before
// olderThan that lost says are lost (a crash took the process that made
// them; S3 keeps their parts, billed and unlisted, until aborted). It
// returns how many it aborted.
func (s *S3Store) AbortUploads(ctx context.Context, olderThan time.Time, lost func(ctx context.Context, key string) (bool, error)) (int, error) {
	n := 0
	in := &s3.ListMultipartUploadsInput{Bucket: &s.bucket, Prefix: aws.String(recordingsPrefix)}
	for {
		out, err := s.c.ListMultipartUploads(ctx, in)
		if err != nil {
			return n, fmt.Errorf("recordings: list uploads: %w", err)
		}
		for _, u := range out.Uploads {
			key := aws.ToString(u.Key)
			if _, _, ok := ParseObjectKey(key); !ok || u.Initiated == nil || !u.Initiated.Before(olderThan) {
				continue
			}
			gone, err := lost(ctx, key)
			if err != nil {
				return n, err
			}
			if !gone {
				continue
			}
			if _, err := s.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: u.Key, UploadId: u.UploadId}); err != nil {
				return n, fmt.Errorf("recordings: abort upload: %w", err)
			}
			n++
		}
		if !aws.ToBool(out.IsTruncated) {
			return n, nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// Delete removes the object.
func (s *S3Store) Delete(ctx context.Context, key string) error {
	if _, err := s.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key}); err != nil {
		return fmt.Errorf("recordings: delete object: %w", err)
	}
	return nil
}

// DirStore keeps recordings as files under a folder: the embedded default
// of `switchboard dev`. An upload is a hidden temporary file until it
// completes.
type DirStore struct{ dir string }

var _ Store = (*DirStore)(nil)

// NewDirStore returns a store in dir, creating it.
func NewDirStore(dir string) (*DirStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("recordings: store folder: %w", err)
	}
	return &DirStore{dir: dir}, nil
}

func (d *DirStore) path(key string) (string, error) {
	p := filepath.Join(d.dir, filepath.FromSlash(key))
	if !strings.HasPrefix(p, filepath.Clean(d.dir)+string(filepath.Separator)) {
		return "", sb.Errorf(sb.EINVALID, "recording key %q leaves the store", key)
	}
	return p, nil
}

type dirUpload struct {
	f    *os.File
	path string
}

func (d *DirStore) Create(_ context.Context, key string) (Upload, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, fmt.Errorf("recordings: store folder: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*")
	if err != nil {
		return nil, fmt.Errorf("recordings: create: %w", err)
	}
	return &dirUpload{f: f, path: p}, nil
}

func (u *dirUpload) Write(p []byte) (int, error) { return u.f.Write(p) }

func (u *dirUpload) Complete(context.Context) error {
	if err := u.f.Sync(); err != nil {
		u.f.Close()
		return fmt.Errorf("recordings: sync: %w", err)
	}
	if err := u.f.Close(); err != nil {
		return fmt.Errorf("recordings: close: %w", err)
	}
	if err := os.Rename(u.f.Name(), u.path); err != nil {
		return fmt.Errorf("recordings: publish: %w", err)
	}
	return nil
}

func (u *dirUpload) Abort(context.Context) error {
	u.f.Close()
	if err := os.Remove(u.f.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("recordings: abort: %w", err)
	}
	return nil
}

type dirObject struct {
	*os.File
	size int64
}

func (o dirObject) Size() int64 { return o.size }

func (d *DirStore) Open(_ context.Context, key string) (Object, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, sb.Errorf(sb.ENOTFOUND, "recording not found")
	} else if err != nil {
		return nil, fmt.Errorf("recordings: open: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("recordings: stat: %w", err)
	}
	return dirObject{File: f, size: st.Size()}, nil
}

func (d *DirStore) Delete(_ context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("recordings: delete: %w", err)
	}
	return nil
}

// Recover publishes what calls in progress left in the folder when the
// process died (each upload's hidden temporary file), cut back to its last
// whole segment, so that it reads as a truncated recording; a file with no
// whole segment is removed. Call it at start, before any recording
// begins. It returns the object keys it recovered.
func (d *DirStore) Recover() ([]string, error) {
	var keys []string
	err := filepath.WalkDir(d.dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		base := e.Name()
		i := strings.Index(base, ".sbrec.")
		if !strings.HasPrefix(base, ".") || i < 0 {
			return nil
		}
		whole, err := wholeSegments(p)
		if err != nil {
			return err
		}
		if whole == 0 {
			return os.Remove(p)
		}
		if err := os.Truncate(p, whole); err != nil {
			return fmt.Errorf("recordings: recover %s: %w", base, err)
		}
		final := filepath.Join(filepath.Dir(p), base[1:i+len(".sbrec")])
		if err := os.Rename(p, final); err != nil {
			return fmt.Errorf("recordings: recover: %w", err)
		}
		rel, err := filepath.Rel(d.dir, final)
		if err != nil {
			return err
		}
		keys = append(keys, filepath.ToSlash(rel))
		return nil
	})
	return keys, err
}

// Ping checks that the bucket answers, for readiness.
func (s *S3Store) Ping(ctx context.Context) error {
	if _, err := s.c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket}); err != nil {
		return fmt.Errorf("recordings: bucket %s: %w", s.bucket, err)
	}
	return nil
}

// Ping checks that the folder is there, for readiness.
func (d *DirStore) Ping(context.Context) error {
	if _, err := os.Stat(d.dir); err != nil {
		return fmt.Errorf("recordings: %w", err)
	}
	return nil
}
