package tiering_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/sediment-io/sediment/tiering"
)

// rangeServer is a minimal S3 GET endpoint serving one object, with the ways a server may answer a
// ranged GET: honour it, ignore it (200 and the whole object) or answer from the wrong start.
type rangeServer struct {
	obj  []byte
	mode string // "honour", "ignore", "shifted"
}

func (s *rangeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("ETag", `"e1"`)
	rng, ok := strings.CutPrefix(r.Header.Get("Range"), "bytes=")
	if !ok || s.mode == "ignore" {
		w.Header().Set("Content-Length", strconv.Itoa(len(s.obj)))
		w.Write(s.obj)
		return
	}
	a, b, _ := strings.Cut(rng, "-")
	from, _ := strconv.Atoi(a)
	to := len(s.obj) - 1
	if b != "" {
		to, _ = strconv.Atoi(b)
	}
	if s.mode == "shifted" {
		from, to = from+10, to+10
	}
	w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, to, len(s.obj)))
	w.Header().Set("Content-Length", strconv.Itoa(to-from+1))
	w.WriteHeader(http.StatusPartialContent)
	w.Write(s.obj[from : to+1])
}

// TestS3GetRefusesUnrangedResponse: a ranged Get answered from another start than asked (a server
// that ignored the Range and sent the whole object, or one that misplaced it) is an error, never
// bytes from the wrong place; a response that starts where asked (or the whole object for a range
// from byte 0) is read as usual.
func TestS3GetRefusesUnrangedResponse(t *testing.T) {
	obj := make([]byte, 4096)
	for i := range obj {
		obj[i] = byte(i*7 + i>>8)
	}
	srv := &rangeServer{obj: obj}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	st, err := tiering.NewS3Store(context.Background(), tiering.S3Config{
		Bucket: "b", Region: "us-east-1", Endpoint: hs.URL, PathStyle: true, MaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	get := func(off, n int64) ([]byte, error) {
		rc, err := st.Get(context.Background(), "o", off, n)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}
	for _, tc := range []struct {
		mode   string
		off, n int64
		ok     bool
	}{
		{"honour", 100, 50, true},
		{"honour", 1000, -1, true},
		{"ignore", 0, 50, true}, // the whole object starts where asked; the reader stops at 50
		{"ignore", 100, 50, false},
		{"ignore", 100, -1, false},
		{"shifted", 100, 50, false},
	} {
		srv.mode = tc.mode
		got, err := get(tc.off, tc.n)
		end := int64(len(obj))
		if tc.n >= 0 {
			end = tc.off + tc.n
		}
		switch {
		case tc.ok && (err != nil || string(got) != string(obj[tc.off:end])):
			t.Errorf("%s [%d,+%d): %d bytes, err %v; want the object's bytes", tc.mode, tc.off, tc.n, len(got), err)
		case !tc.ok && err == nil:
			t.Errorf("%s [%d,+%d): no error, %d bytes (equal to the asked range: %v)", tc.mode, tc.off, tc.n, len(got), string(got) == string(obj[tc.off:end]))
		case !tc.ok && !strings.Contains(err.Error(), "Content-Range"):
			t.Errorf("%s [%d,+%d): error %q does not name the Content-Range", tc.mode, tc.off, tc.n, err)
		}
	}
}
