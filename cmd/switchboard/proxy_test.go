package main

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-voice/switchboard/metadata"
)

// mustStatus sends a request with the given header pairs and returns its
// status.
func mustStatus(t *testing.T, method, url, body string, header ...string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// postLogin sends a login through a "proxy" that names the client in
// X-Forwarded-For and returns the status.
func postLogin(t *testing.T, m *Main, email, password, forwardedFor string) int {
	t.Helper()
	return mustStatus(t, http.MethodPost, m.HTTPURL()+"/v1/login", `{"email":"`+email+`","password":"`+password+`"}`,
		"Content-Type", "application/json", "X-Forwarded-For", forwardedFor)
}

// Behind a reverse proxy listed in -http-trusted-proxies, twenty failed
// logins from one client lock that client out, not the others behind
// the proxy, and the audit log names the client, not the proxy.
func TestServiceBehindTrustedProxy(t *testing.T) {
	m := mustStartService(t, map[string]string{"http-trusted-proxies": "127.0.0.1"})
	f := mustProvision(t, m, "Acme", "2000", 1)
	email := f.Operators[0].Email
	for i := range 20 {
		if code := postLogin(t, m, "nobody"+strconv.Itoa(i)+"@example.test", "guess", "198.51.100.7"); code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, code)
		}
	}
	if code := postLogin(t, m, email, testPassword, "198.51.100.7"); code != http.StatusTooManyRequests {
		t.Errorf("the client that guessed: %d, want 429", code)
	}
	if code := postLogin(t, m, email, testPassword, "198.51.100.8"); code != http.StatusOK {
		t.Errorf("another client behind the proxy: %d, want 200", code)
	}
	entries, err := metadata.NewAuditLog(m.DB).Recent(context.Background(), nil, 30)
	if err != nil {
		t.Fatal(err)
	}
	ips := map[string]int{}
	for _, e := range entries {
		ips[e.Outcome+" "+e.IP]++
	}
	if ips["denied 198.51.100.7"] != 20 || ips["throttled 198.51.100.7"] != 1 || ips["ok 198.51.100.8"] != 1 || len(ips) != 3 {
		t.Errorf("audit entries by outcome and address: %v", ips)
	}
}
