package tiering

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// OpenURL builds a Store from a URL:
//
//	file:///abs/dir, file://rel/dir   local directory (created if missing); DIR = host + path
//	mem://                            in memory (tests)
//	s3://BUCKET[/PREFIX]?endpoint=URL&region=R&path-style=true
//	                                  S3 or any S3-compatible service; credentials from the standard
//	                                  chain (AWS_ACCESS_KEY_ID/..., profiles, roles). Optional:
//	                                  multipart-threshold=BYTES, part-size=BYTES, max-attempts=N.
//
// Unknown schemes or query parameters, and malformed values, are errors naming the culprit.
func OpenURL(ctx context.Context, raw string) (Store, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("tiering: object store URL %q: %w", raw, err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("tiering: object store URL %q: %s", raw, fmt.Sprintf(format, a...))
	}
	switch u.Scheme {
	case "file":
		if len(u.Query()) > 0 {
			return nil, bad("file:// takes no query parameters")
		}
		dir := u.Host + u.Path
		if dir == "" {
			return nil, bad("file:// needs a directory, e.g. file:///var/lib/sediment/objects")
		}
		return NewFileStore(dir)
	case "mem":
		if u.Host != "" || (u.Path != "" && u.Path != "/") || len(u.Query()) > 0 {
			return nil, bad("mem:// takes no host, path or parameters")
		}
		return NewMemStore(), nil
	case "s3":
		cfg := S3Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
		if cfg.Bucket == "" {
			return nil, bad("s3:// needs a bucket: s3://BUCKET[/PREFIX]")
		}
		for k, vs := range u.Query() {
			if len(vs) != 1 {
				return nil, bad("parameter %q given %d times", k, len(vs))
			}
			v := vs[0]
			switch k {
			case "endpoint":
				e, err := url.Parse(v)
				if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
					return nil, bad("endpoint %q is not an http(s)://host[:port] URL", v)
				}
				cfg.Endpoint = v
			case "region":
				if v == "" {
					return nil, bad("empty region")
				}
				cfg.Region = v
			case "path-style":
				b, err := strconv.ParseBool(v)
				if err != nil {
					return nil, bad("path-style=%q is not a boolean", v)
				}
				cfg.PathStyle = b
			case "multipart-threshold", "part-size":
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil || n <= 0 {
					return nil, bad("%s=%q is not a positive byte count", k, v)
				}
				if k == "part-size" {
					cfg.PartSize = n
				} else {
					cfg.MultipartThreshold = n
				}
			case "max-attempts":
				n, err := strconv.Atoi(v)
				if err != nil || n <= 0 {
					return nil, bad("max-attempts=%q is not a positive integer", v)
				}
				cfg.MaxAttempts = n
			default:
				return nil, bad("unknown parameter %q (known: endpoint, region, path-style, multipart-threshold, part-size, max-attempts)", k)
			}
		}
		return NewS3Store(ctx, cfg)
	case "":
		return nil, bad("no scheme; use file://, s3:// or mem://")
	default:
		return nil, bad("unknown scheme %q; use file://, s3:// or mem://", u.Scheme)
	}
}
