package signature_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/switchboard-voice/switchboard/webhooks/signature"
)

// A receiver checks every delivery before it trusts the body. During a
// rotation it may know both secrets; once switchboard has retired the old
// one, it keeps only the new.
func ExampleVerify() {
	secrets := []string{"whsec_current", "whsec_next"}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		if err := signature.Verify(r.Header.Get(signature.Header), body, secrets, 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		// Authentic: de-duplicate on the payload's "id", then act on it.
		w.WriteHeader(http.StatusNoContent)
	})

	// What switchboard sends: here signed with the new secret only.
	body := `{"id":"0193a7c2-5b9e-7c11-8f1e-2b1f9d0c4a11","event":"call.ended"}`
	req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(body))
	req.Header.Set(signature.Header, signature.Sign([]byte(body), time.Now(), "whsec_next"))
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println(rec.Code)

	// A forged one.
	req = httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(body))
	req.Header.Set(signature.Header, signature.Sign([]byte(body), time.Now(), "whsec_guess"))
	rec = httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output:
	// 204
	// 401 signature: no signature matches the body and a secret
}
