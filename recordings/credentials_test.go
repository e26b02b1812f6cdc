package recordings

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-voice/switchboard/internal/testenv"
)

// isolateAWS keeps the SDK's default chain to the environment the test
// sets: no shared config files, no instance metadata.
func isolateAWS(t *testing.T) {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{"AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none, "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_PROFILE": "", "AWS_SESSION_TOKEN": "", "AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_ROLE_ARN": "", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "", "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_S3": ""} {
		t.Setenv(k, v)
	}
}

// Without static keys the store takes its credentials from the SDK's
// default chain: here AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, as a
// Kubernetes secret or a systemd unit would set them. Wrong ones in the
// environment are refused by the server, so the chain is what signs.
func TestS3CredentialsFromTheEnvironment(t *testing.T) {
	srv := testenv.NewS3(t)
	isolateAWS(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := S3Config{Endpoint: srv.Endpoint, Bucket: srv.Bucket, PathStyle: true}

	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	st, err := NewS3Store(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("ping with the environment's credentials: %v", err)
	}
	up, err := st.Create(ctx, "t/env.sbrec")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write([]byte("sealed bytes")); err != nil {
		t.Fatal(err)
	}
	if err := up.Complete(ctx); err != nil {
		t.Fatal(err)
	}
	obj, err := st.Open(ctx, "t/env.sbrec")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(io.NewSectionReader(obj, 0, 12))
	if err != nil || !bytes.Equal(got, []byte("sealed bytes")) {
		t.Errorf("read back %q, %v", got, err)
	}

	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-"+srv.SecretKey)
	st, err = NewS3Store(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Ping(ctx); err == nil {
		t.Error("a wrong secret key in the environment was accepted")
	}
	// Static keys, when given, win over the environment.
	c.AccessKey, c.SecretKey = srv.AccessKey, srv.SecretKey
	if st, err = NewS3Store(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := st.Ping(ctx); err != nil {
		t.Errorf("static keys beside a wrong environment: %v", err)
	}
}

// An access key without its secret (or the reverse) is a mistake in the
// settings, refused at start rather than silently replaced by the chain.
func TestS3HalfAStaticKeyIsRefused(t *testing.T) {
	for _, c := range []S3Config{{Bucket: "b", AccessKey: "AKIA"}, {Bucket: "b", SecretKey: "s"}} {
		if _, err := NewS3Store(context.Background(), c); err == nil || !strings.Contains(err.Error(), "go together") {
			t.Errorf("%+v: %v", c, err)
		}
	}
}
