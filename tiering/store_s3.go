package tiering

// This file is the only one that imports aws-sdk-go-v2.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3Config configures the S3 backend. Zero values take the defaults noted.
type S3Config struct {
	Bucket string // required
	Prefix string // optional key prefix inside the bucket ("a/b" → objects under "a/b/")
	Region string // "" = from the standard chain (AWS_REGION, profile), else us-east-1
	// Endpoint is a custom endpoint URL (MinIO, another S3-compatible service); "" = AWS.
	Endpoint string
	// PathStyle addresses the bucket in the path (http://host/bucket/key), as MinIO needs.
	PathStyle bool
	// Credentials; nil = the standard chain (env, shared config/credentials files, SSO, web identity,
	// ECS/EC2 roles).
	Credentials aws.CredentialsProvider

	// Retries, by the SDK's standard retryer: 5xx, SlowDown and other throttles, connection resets,
	// timeouts. Backoff is "full jitter": uniform in [0, min(MaxBackoff, BaseBackoff·2^(attempt-1))).
	MaxAttempts int           // per request, including the first; default 10
	BaseBackoff time.Duration // default 100ms
	MaxBackoff  time.Duration // default 20s
	// ResponseHeaderTimeout bounds the wait for a reply's headers after the request was sent: a hung
	// server becomes a retryable timeout. Default 60s.
	ResponseHeaderTimeout time.Duration
	// StallTimeout bounds how long a connection may make no progress mid-request: no byte of a
	// request body accepted by the socket, or no byte of a reply received. A peer that stops reading
	// an upload, or stops sending a download, then fails the attempt as a retryable timeout instead
	// of holding the partition's uploads (or a consumer's read) until TCP gives up. It is a window
	// of inactivity, not a deadline: a slow transfer that progresses never trips it. Default 60s.
	StallTimeout time.Duration
	// MaxGetResumes bounds how often a Get reader re-requests the rest of its range after a mid-body
	// failure. Default 5.
	MaxGetResumes int

	// Objects of at least MultipartThreshold bytes are uploaded as multipart uploads of PartSize parts,
	// PartConcurrency at a time. S3's limits: parts ≥ 5 MiB (except the last), ≤ 10,000 parts.
	// Defaults (128 MiB, 128 MiB, 4) keep a segment ≤ 128 MiB at one PUT and a 1 GiB one at 10 requests.
	MultipartThreshold int64
	PartSize           int64
	PartConcurrency    int
}

func (c *S3Config) setDefaults() {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 10
	}
	if c.BaseBackoff <= 0 {
		c.BaseBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 20 * time.Second
	}
	if c.ResponseHeaderTimeout <= 0 {
		c.ResponseHeaderTimeout = 60 * time.Second
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = 60 * time.Second
	}
	if c.MaxGetResumes <= 0 {
		c.MaxGetResumes = 5
	}
	if c.MultipartThreshold <= 0 {
		c.MultipartThreshold = 128 << 20
	}
	if c.PartSize <= 0 {
		c.PartSize = min(128<<20, max(c.MultipartThreshold, 5<<20))
	}
	if c.PartConcurrency <= 0 {
		c.PartConcurrency = 4
	}
}

// Validate reports a configuration error.
func (c S3Config) Validate() error {
	switch {
	case c.Bucket == "":
		return errors.New("tiering: s3: bucket is required")
	case c.PartSize != 0 && c.PartSize < 5<<20:
		return fmt.Errorf("tiering: s3: part size %d is below S3's 5 MiB minimum", c.PartSize)
	case c.MultipartThreshold != 0 && c.PartSize != 0 && c.MultipartThreshold < c.PartSize:
		return fmt.Errorf("tiering: s3: multipart threshold %d below part size %d", c.MultipartThreshold, c.PartSize)
	}
	if c.Prefix != "" {
		if err := ValidKey(strings.Trim(c.Prefix, "/")); err != nil {
			return fmt.Errorf("tiering: s3: prefix: %w", err)
		}
	}
	return nil
}

// S3Stats counts HTTP requests the backend sent (retries included), by method, and failed ones
// (transport errors and status ≥ 500). PUT counts every PutObject and UploadPart request; POST
// counts CreateMultipartUpload and CompleteMultipartUpload. Ops has the same requests by S3
// operation, which is what S3 prices.
type S3Stats struct {
	Requests map[string]int64
	Errors   map[string]int64
	Ops      map[string]RequestCount // by S3 operation: PutObject, UploadPart, GetObject, ...
}

// S3Store is the S3 backend (s3://BUCKET/PREFIX?endpoint=...&region=...&path-style=true).
type S3Store struct {
	cfg    S3Config
	client *s3.Client
	prefix string // "" or "p/"
	closed atomic.Bool

	statsMu sync.Mutex
	reqs    map[string]int64
	errs    map[string]int64
	ops     map[string]*RequestCount
}

var (
	_ Store             = (*S3Store)(nil)
	_ ConditionalPutter = (*S3Store)(nil)
	_ UploadSweeper     = (*S3Store)(nil)
)

// countingClient is the SDK's HTTP client with request accounting in front of it.
type countingClient struct {
	s    *S3Store
	next aws.HTTPClient
}

func (c countingClient) Do(r *http.Request) (*http.Response, error) {
	resp, err := c.next.Do(r)
	// The SDK puts the operation's name in the request context (a stack value) and the attempt
	// number in the Amz-Sdk-Request header ("attempt=2; max=10"): a retry is an attempt after the first.
	op := awsmiddleware.GetOperationName(r.Context())
	if op == "" {
		op = r.Method
	}
	failed := err != nil || resp.StatusCode >= 500
	c.s.statsMu.Lock()
	c.s.reqs[r.Method]++
	if failed {
		c.s.errs[r.Method]++
	}
	oc := c.s.ops[op]
	if oc == nil {
		oc = &RequestCount{}
		c.s.ops[op] = oc
	}
	oc.Requests++
	if sdkAttempt(r.Header.Get("Amz-Sdk-Request")) > 1 {
		oc.Retries++
	}
	if failed {
		oc.Errors++
	} else {
		oc.Billed++ // S3 bills 2xx, 3xx and 4xx answers, not 5xx ones nor requests that got no answer
	}
	c.s.statsMu.Unlock()
	return resp, err
}

// sdkAttempt parses the attempt number from an Amz-Sdk-Request header; 1 when absent or unreadable.
func sdkAttempt(h string) int {
	for _, part := range strings.Split(h, ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "attempt="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return n
			}
		}
	}
	return 1
}

// NewS3Store builds an S3 store. It does not contact the service (a wrong bucket shows on first use).
func NewS3Store(ctx context.Context, cfg S3Config) (*S3Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	s := &S3Store{cfg: cfg, reqs: map[string]int64{}, errs: map[string]int64{}, ops: map[string]*RequestCount{}}
	if p := strings.Trim(cfg.Prefix, "/"); p != "" {
		s.prefix = p + "/"
	}
	httpc := awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = 10 * time.Second }).
		WithTransportOptions(func(tr *http.Transport) {
			tr.ResponseHeaderTimeout = cfg.ResponseHeaderTimeout
			tr.MaxIdleConnsPerHost = 64
			tr.DialContext = stallWriteDialer(tr.DialContext, cfg.StallTimeout)
		})
	// Not the SDK's WithReadTimeout: net/http reads for the reply while it sends the body, so a read
	// deadline would also fail an upload that progresses but outlasts the window. The receiving
	// half is watched per reply body instead (stallBody).
	base, max := cfg.BaseBackoff, cfg.MaxBackoff
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpc), // wrapped for counting below, after the loader added any CA bundle
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = cfg.MaxAttempts
				o.MaxBackoff = max
				// The default client-side retry quota gives up after a burst of failures; an archiver
				// that must eventually upload wants every request to get its attempts.
				o.RateLimiter = ratelimit.None
				o.Backoff = retry.BackoffDelayerFunc(func(attempt int, _ error) (time.Duration, error) {
					return fullJitter(base, max, attempt), nil
				})
			})
		}),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tiering: s3: loading AWS config: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	awsCfg.HTTPClient = countingClient{s, awsCfg.HTTPClient}
	s.client = s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.UsePathStyle = cfg.PathStyle
		o.DisableLogOutputChecksumValidationSkipped = true // one log line per GET otherwise
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return s, nil
}

// fullJitter is the delay before retry attempt (1 = the first retry): uniform in
// [0, min(limit, base·2^(attempt-1))] ("full jitter"), so clients that failed together do not retry
// together.
func fullJitter(base, limit time.Duration, attempt int) time.Duration {
	ceil := base << min(max(attempt, 1)-1, 30)
	if ceil <= 0 || ceil > limit {
		ceil = limit
	}
	return time.Duration(rand.Int64N(int64(ceil) + 1))
}

// stallWriteDialer wraps dial so that every connection fails a write that makes no progress for
// timeout: nothing in net/http covers a request body the server stopped reading
// (ResponseHeaderTimeout starts only once the body is sent).
func stallWriteDialer(dial func(context.Context, string, string) (net.Conn, error), timeout time.Duration) func(context.Context, string, string) (net.Conn, error) {
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &stallWriteConn{Conn: c, timeout: timeout}, nil
	}
}

// stallWriteConn renews its write deadline for every stallWriteChunk bytes written: a window of
// inactivity, not a deadline on the transfer, so a slow link that keeps draining never trips it.
// The timeout error (os.ErrDeadlineExceeded in a *net.OpError) is temporary, which the SDK's
// retryer retries with the body rewound.
type stallWriteConn struct {
	net.Conn
	timeout time.Duration
}

// stallWriteChunk is small enough to drain within any sane timeout even on a slow link.
const stallWriteChunk = 64 << 10

func (c *stallWriteConn) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), stallWriteChunk)]
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
			return written, err
		}
		n, err := c.Conn.Write(chunk)
		written += n
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// Stats returns a copy of the request counters.
func (s *S3Store) Stats() S3Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	st := S3Stats{Requests: map[string]int64{}, Errors: map[string]int64{}, Ops: make(map[string]RequestCount, len(s.ops))}
	for k, v := range s.reqs {
		st.Requests[k] = v
	}
	for k, v := range s.errs {
		st.Errors[k] = v
	}
	for k, v := range s.ops {
		st.Ops[k] = *v
	}
	return st
}

// RequestCounts implements RequestCounter: the requests sent, by S3 operation, with the price of
// one billed request of each (S3 Standard, us-east-1; s3RequestPrice).
func (s *S3Store) RequestCounts() map[string]RequestCount {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	out := make(map[string]RequestCount, len(s.ops)+len(s3RequestPricePer1000))
	for op := range s3RequestPricePer1000 { // every operation the store uses, even before its first request
		out[op] = RequestCount{PriceUSD: s3RequestPrice(op)}
	}
	for op, c := range s.ops {
		rc := *c
		rc.PriceUSD = s3RequestPrice(op)
		out[op] = rc
	}
	return out
}

func (s *S3Store) full(key string) string { return s.prefix + key }

func (s *S3Store) check(key string) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ValidKey(key)
}

// mapErr turns SDK errors into the package's sentinels.
func (s *S3Store) mapErr(op, key string, err error) error {
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	code := ""
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	status := 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	switch {
	case errors.As(err, &nsk), errors.As(err, &nf), code == "NoSuchKey", code == "NotFound" && status == 404:
		return fmt.Errorf("%w: %s (%s)", ErrNotFound, key, code)
	case code == "InvalidRange" || status == 416:
		return fmt.Errorf("%w: %s", ErrInvalidRange, key)
	case code == "PreconditionFailed" || status == 412:
		return fmt.Errorf("%w: %s", ErrExists, key)
	}
	return fmt.Errorf("tiering: s3 %s %s: %w", op, key, err)
}

func (s *S3Store) Put(ctx context.Context, key string, body io.ReaderAt, size int64) error {
	return s.put(ctx, key, body, size, false)
}

// PutIfAbsent sends If-None-Match: * (on the PUT, or on CompleteMultipartUpload).
func (s *S3Store) PutIfAbsent(ctx context.Context, key string, body io.ReaderAt, size int64) error {
	return s.put(ctx, key, body, size, true)
}

func (s *S3Store) put(ctx context.Context, key string, body io.ReaderAt, size int64, ifAbsent bool) error {
	if err := s.check(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("tiering: put %s: negative size %d", key, size)
	}
	if size >= s.cfg.MultipartThreshold {
		return s.putMultipart(ctx, key, body, size, ifAbsent)
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.cfg.Bucket),
		Key:           aws.String(s.full(key)),
		Body:          io.NewSectionReader(body, 0, size), // seekable: the SDK rewinds it to retry
		ContentLength: aws.Int64(size),
	}
	if ifAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	for attempt := 0; ; attempt++ {
		_, err := s.client.PutObject(ctx, in)
		err = s.mapErr("put", key, err)
		// 409 ConditionalRequestConflict: a concurrent conditional write is in flight; ask again.
		if ifAbsent && isConflict(err) && attempt < 5 {
			select {
			case <-time.After(s.cfg.BaseBackoff):
			case <-ctx.Done():
				return fmt.Errorf("tiering: s3 put %s: %w (after a conflict: %v)", key, ctx.Err(), err)
			}
			continue
		}
		return err
	}
}

func isConflict(err error) bool {
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == 409
}

func (s *S3Store) putMultipart(ctx context.Context, key string, body io.ReaderAt, size int64, ifAbsent bool) error {
	full := s.full(key)
	cr, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(s.cfg.Bucket), Key: aws.String(full),
	})
	if err != nil {
		return s.mapErr("create-multipart", key, err)
	}
	uploadID := cr.UploadId
	abort := func() {
		// Best effort with its own deadline: the caller's context may be the reason we stopped.
		actx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(s.cfg.Bucket), Key: aws.String(full), UploadId: uploadID,
		})
	}
	nparts := int((size + s.cfg.PartSize - 1) / s.cfg.PartSize)
	if nparts > 10000 {
		abort()
		return fmt.Errorf("tiering: put %s: %d parts exceed S3's 10,000 (raise PartSize)", key, nparts)
	}
	parts := make([]types.CompletedPart, nparts)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		sem      = make(chan struct{}, s.cfg.PartConcurrency)
	)
	for i := 0; i < nparts; i++ {
		off := int64(i) * s.cfg.PartSize
		n := min(s.cfg.PartSize, size-off)
		select {
		case sem <- struct{}{}:
		case <-pctx.Done():
		}
		if pctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			out, err := s.client.UploadPart(pctx, &s3.UploadPartInput{
				Bucket: aws.String(s.cfg.Bucket), Key: aws.String(full), UploadId: uploadID,
				PartNumber:    aws.Int32(int32(i + 1)),
				Body:          io.NewSectionReader(body, off, n),
				ContentLength: aws.Int64(n),
			})
			if err != nil {
				errOnce.Do(func() { firstErr = s.mapErr(fmt.Sprintf("upload-part %d", i+1), key, err); cancel() })
				return
			}
			parts[i] = types.CompletedPart{
				ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1)),
				ChecksumCRC32: out.ChecksumCRC32, ChecksumCRC32C: out.ChecksumCRC32C,
				ChecksumCRC64NVME: out.ChecksumCRC64NVME, ChecksumSHA1: out.ChecksumSHA1, ChecksumSHA256: out.ChecksumSHA256,
			}
		})
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		abort()
		return firstErr
	}
	in := &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(s.cfg.Bucket), Key: aws.String(full), UploadId: uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}
	if ifAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	if _, err := s.client.CompleteMultipartUpload(ctx, in); err != nil {
		err = s.mapErr("complete-multipart", key, err)
		// A Complete that succeeded but whose reply was lost leaves the object in place; a retried
		// Complete then answers NoSuchUpload. Resolve by looking: the right size means it is ours
		// (the key is unique per upload), so the Put succeeded.
		if isNoSuchUpload(err) {
			if info, herr := s.Head(ctx, key); herr == nil && info.Size == size && !ifAbsent {
				return nil
			}
		}
		abort()
		return err
	}
	return nil
}

func (s *S3Store) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if err := s.check(key); err != nil {
		return nil, err
	}
	if off < 0 || length < -1 {
		return nil, fmt.Errorf("%w: %s: offset %d length %d", ErrInvalidRange, key, off, length)
	}
	if length == 0 { // S3 has no empty range; check the offset is inside the object
		info, err := s.Head(ctx, key)
		if err != nil {
			return nil, err
		}
		if _, err := checkRange(key, off, 0, info.Size); err != nil {
			return nil, err
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	r := &s3Reader{s: s, ctx: ctx, key: key, pos: off, end: -1}
	if length > 0 {
		r.end = off + length
	}
	if err := r.open(off == 0 && length == -1); err != nil {
		return nil, err
	}
	return r, nil
}

// s3Reader streams a GET body and, after a mid-body failure, re-requests the remaining range,
// pinned to the first response's ETag so that a replaced object is never spliced with the old one.
type s3Reader struct {
	s        *S3Store
	ctx      context.Context
	key      string
	etag     *string
	pos, end int64 // next byte to return; end exclusive (-1 until known)
	body     io.ReadCloser
	resumes  int
}

func (r *s3Reader) open(whole bool) error {
	in := &s3.GetObjectInput{Bucket: aws.String(r.s.cfg.Bucket), Key: aws.String(r.s.full(r.key)), IfMatch: r.etag}
	if !whole {
		if r.end >= 0 {
			in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", r.pos, r.end-1))
		} else {
			in.Range = aws.String(fmt.Sprintf("bytes=%d-", r.pos))
		}
	}
	bctx, cancel := context.WithCancelCause(r.ctx)
	out, err := r.s.client.GetObject(bctx, in)
	if err != nil {
		cancel(nil)
		return r.s.mapErr("get", r.key, err)
	}
	if !whole {
		if start, ok := contentRangeStart(out.ContentRange); ok && start != r.pos || !ok && r.pos != 0 {
			// A server that ignored or misread the Range sends other bytes than asked: taking them
			// would serve data from the wrong place in the object, with valid batch CRCs.
			out.Body.Close()
			cancel(nil)
			return fmt.Errorf("tiering: s3 get %s: asked for bytes from %d, the response's Content-Range is %q", r.key, r.pos, aws.ToString(out.ContentRange))
		}
	}
	r.body = newStallBody(out.Body, cancel, r.s.cfg.StallTimeout)
	if r.etag == nil {
		r.etag = out.ETag
	}
	if out.ContentLength != nil {
		if e := r.pos + *out.ContentLength; r.end < 0 || e < r.end {
			r.end = e // cut at the object's end
		}
	}
	return nil
}

// contentRangeStart is the first byte position of a Content-Range header ("bytes 100-199/1000");
// false if absent or not of that form. A response without one to a ranged GET is the whole object
// (the server ignored the Range), which starts at byte 0.
func contentRangeStart(cr *string) (int64, bool) {
	v, ok := strings.CutPrefix(aws.ToString(cr), "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(v, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(first, 10, 64)
	return n, err == nil && n >= 0
}

func (r *s3Reader) Read(p []byte) (int, error) {
	for {
		if r.end >= 0 && r.pos >= r.end {
			return 0, io.EOF
		}
		if r.body == nil {
			return 0, ErrClosed
		}
		if r.end >= 0 && int64(len(p)) > r.end-r.pos {
			p = p[:r.end-r.pos] // never past the range, whatever the body holds beyond it
		}
		n, err := r.body.Read(p)
		r.pos += int64(n)
		if err == nil || (err == io.EOF && (r.end < 0 || r.pos >= r.end)) {
			return n, err
		}
		// A reset, a timeout, or an early EOF (truncated body): resume the remaining range.
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if r.ctx.Err() != nil || r.resumes >= r.s.cfg.MaxGetResumes || r.end < 0 {
			return n, fmt.Errorf("tiering: s3 get %s at byte %d: %w", r.key, r.pos, err)
		}
		r.resumes++
		r.body.Close()
		r.body = nil
		if oerr := r.open(false); oerr != nil {
			return n, fmt.Errorf("tiering: s3 get %s: resuming at byte %d after %v: %w", r.key, r.pos, err, oerr)
		}
		if n > 0 {
			return n, nil
		}
	}
}

// errStalled cancels a reply whose body delivered nothing for StallTimeout.
var errStalled = errors.New("reply body stalled")

// stallBody fails a Read that stays blocked for about timeout (between 1 and 1.5 times it) by
// cancelling the request's context: the receiving half of StallTimeout. Only a Read in progress
// is watched, so a caller that pauses between Reads (read-ahead waiting for its consumer) never
// trips it. The hot path is two atomic stores and an add per Read; a timer every timeout/2 looks
// for a Read that has been in progress with no Read completing across two of its ticks.
type stallBody struct {
	body    io.ReadCloser
	cancel  context.CancelCauseFunc
	tick    time.Duration
	timer   *time.Timer
	reading atomic.Bool
	reads   atomic.Int64
	stalled atomic.Bool
	closed  atomic.Bool

	lastReads int64 // the watchdog's own (it runs one tick at a time)
	strikes   int
}

func newStallBody(body io.ReadCloser, cancel context.CancelCauseFunc, timeout time.Duration) *stallBody {
	b := &stallBody{body: body, cancel: cancel, tick: max(timeout/2, time.Millisecond), lastReads: -1}
	b.timer = time.AfterFunc(b.tick, b.watch)
	return b
}

func (b *stallBody) watch() {
	if b.closed.Load() {
		return
	}
	if n := b.reads.Load(); b.reading.Load() && n == b.lastReads {
		if b.strikes++; b.strikes >= 2 {
			b.stalled.Store(true)
			b.cancel(errStalled)
			return
		}
	} else {
		b.lastReads, b.strikes = n, 0
	}
	b.timer.Reset(b.tick)
}

func (b *stallBody) Read(p []byte) (int, error) {
	b.reading.Store(true)
	n, err := b.body.Read(p)
	b.reads.Add(1)
	b.reading.Store(false)
	if err != nil && b.stalled.Load() {
		err = fmt.Errorf("no data for %v: %w", 2*b.tick, err)
	}
	return n, err
}

func (b *stallBody) Close() error {
	b.closed.Store(true)
	b.timer.Stop()
	err := b.body.Close()
	b.cancel(nil)
	return err
}

func (r *s3Reader) Close() error {
	if r.body == nil {
		return nil
	}
	err := r.body.Close()
	r.body = nil
	return err
}

func (s *S3Store) Head(ctx context.Context, key string) (ObjectInfo, error) {
	if err := s.check(key); err != nil {
		return ObjectInfo{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.full(key))})
	if err != nil {
		return ObjectInfo{}, s.mapErr("head", key, err)
	}
	return ObjectInfo{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

func (s *S3Store) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if err := validPrefix(prefix); err != nil {
		return nil, err
	}
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.cfg.Bucket), Prefix: aws.String(s.full(prefix)),
	})
	var out []ObjectInfo
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.mapErr("list", prefix, err)
		}
		for _, o := range page.Contents {
			k := strings.TrimPrefix(aws.ToString(o.Key), s.prefix)
			out = append(out, ObjectInfo{Key: k, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// AbortStaleUploads aborts the multipart uploads under prefix initiated before cutoff
// (UploadSweeper). The listing asks for the whole bucket and filters by key here: MinIO answers a
// prefix that is not a whole object name with no uploads at all (minio/minio#20989), while S3 and
// MinIO both list every upload when asked without one. Uploads of other prefixes (another cluster
// sharing the bucket) are never touched.
func (s *S3Store) AbortStaleUploads(ctx context.Context, prefix string, cutoff time.Time) (int, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	if err := validPrefix(prefix); err != nil {
		return 0, err
	}
	full := s.full(prefix)
	p := s3.NewListMultipartUploadsPaginator(s.client, &s3.ListMultipartUploadsInput{Bucket: aws.String(s.cfg.Bucket)})
	n := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return n, s.mapErr("list-uploads", prefix, err)
		}
		for _, u := range page.Uploads {
			key := aws.ToString(u.Key)
			if !strings.HasPrefix(key, full) || u.Initiated == nil || !u.Initiated.Before(cutoff) {
				continue
			}
			_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
				Bucket: aws.String(s.cfg.Bucket), Key: u.Key, UploadId: u.UploadId,
			})
			// NoSuchUpload: finished or aborted since the listing (by its own Put, or a peer's sweep).
			if err != nil && !isNoSuchUpload(err) {
				return n, s.mapErr("abort-upload", strings.TrimPrefix(key, s.prefix), err)
			}
			if err == nil {
				n++
			}
		}
	}
	return n, nil
}

func isNoSuchUpload(err error) bool {
	var nsu *types.NoSuchUpload
	var ae smithy.APIError
	return errors.As(err, &nsu) || errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload"
}

func (s *S3Store) Delete(ctx context.Context, key string) error {
	if err := s.check(key); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(s.full(key))})
	if err = s.mapErr("delete", key, err); errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

func (s *S3Store) Close() error {
	s.closed.Store(true)
	return nil
}
