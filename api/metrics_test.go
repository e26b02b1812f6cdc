package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// /metrics shows every tenant's volumes: on the service's own address it
// is served only with the metrics token, and not at all without one.
func TestMetricsNeedTheToken(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("switchboard_active_calls 0\n")) })
	get := func(t *testing.T, token, bearer string) int {
		t.Helper()
		srv := httptest.NewServer(NewServer(Config{MetricsToken: token}, Deps{APIKeys: &fakeKeys{}, Users: &fakeUsers{}, Metrics: metrics}).Handler())
		defer srv.Close()
		req, err := http.NewRequestWithContext(testCtx(t), http.MethodGet, srv.URL+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, tt := range []struct {
		name, token, bearer string
		want                int
	}{
		{"no token configured", "", "", http.StatusNotFound},
		{"no token configured, one sent", "", "anything", http.StatusNotFound},
		{"without the token", "s3cret-metrics", "", http.StatusUnauthorized},
		{"a wrong token", "s3cret-metrics", "s3cret-metricz", http.StatusUnauthorized},
		{"an API key's shape", "s3cret-metrics", "sbk_good", http.StatusUnauthorized},
		{"the token", "s3cret-metrics", "s3cret-metrics", http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := get(t, tt.token, tt.bearer); got != tt.want {
				t.Errorf("GET /metrics: %d, want %d", got, tt.want)
			}
		})
	}
}
