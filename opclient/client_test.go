package opclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestLoginFailureCarriesTheAPIError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/login" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request %s %s (%s)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"code":"unauthorized","message":"invalid email or password"}`))
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := Login(ctx, srv.URL, "op@example.test", "wrong")
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != 401 || he.Code != "unauthorized" || he.Message != "invalid email or password" {
		t.Fatalf("Login = %v, want *HTTPError 401 with the API's message", err)
	}
}

func TestLoginKeepsTheSessionCookie(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/login":
			http.SetCookie(w, &http.Cookie{Name: "sb_session", Value: "tok", Path: "/"})
			w.Write([]byte(`{"user":{}}`))
		case "/v1/operator/ws":
			if c, err := r.Cookie("sb_session"); err != nil || c.Value != "tok" {
				t.Errorf("socket request without the session cookie")
			}
			w.WriteHeader(http.StatusForbidden)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Login(ctx, srv.URL, "op@example.test", "right")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err == nil {
		t.Fatal("Connect succeeded against a server that refused the socket")
	}
}
