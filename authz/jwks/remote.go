package jwks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options tune a Remote. Zero values take the defaults in brackets.
type Options struct {
	// Client fetches the set [a client with FetchTimeout]. A copy of it is
	// used that never follows redirects; when its Transport is nil, the
	// copy dials through NewTransport, which refuses link-local, metadata,
	// unspecified and multicast addresses.
	Client *http.Client
	// RefreshInterval is the background refresh period when the response
	// has no usable Cache-Control max-age [5m]; ±10 % jitter is applied so
	// that replicas do not fetch in lockstep.
	RefreshInterval time.Duration
	// MinRefresh and MaxRefresh bound a max-age from the issuer [1m, 1h].
	MinRefresh, MaxRefresh time.Duration
	// RetryInterval is the first delay after a failed background fetch; it
	// doubles up to RefreshInterval [15s].
	RetryInterval time.Duration
	// RefetchInterval is the minimum time between two fetches of this set
	// caused by requests (unknown kid, no keys yet) [10s]. It is what stops
	// a flood of tokens with random kids from becoming a flood of fetches.
	RefetchInterval time.Duration
	// NegativeTTL is how long a kid the issuer did not have is answered
	// "unknown" without looking again [RefetchInterval].
	NegativeTTL time.Duration
	// FetchTimeout bounds one fetch [5s].
	FetchTimeout time.Duration
	// MaxBytes bounds the response body [1 MiB].
	MaxBytes int64
	// OnFetch observes every fetch (metrics); err is nil on success.
	OnFetch func(err error)
	// Logger receives fetch failures [slog.Default()].
	Logger *slog.Logger
	// Now is the clock of the refetch window and negative cache [time.Now].
	Now func() time.Time
}

func (o *Options) defaults() {
	def := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&o.RefreshInterval, 5*time.Minute)
	def(&o.MinRefresh, time.Minute)
	def(&o.MaxRefresh, time.Hour)
	def(&o.RetryInterval, 15*time.Second)
	def(&o.RefetchInterval, 10*time.Second)
	def(&o.NegativeTTL, o.RefetchInterval)
	def(&o.FetchTimeout, 5*time.Second)
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1 << 20
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.FetchTimeout}
	}
	o.Client = guardClient(o.Client)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// maxNegative bounds the negative cache; a flood of random kids resets it
// instead of growing it (the refetch window still bounds the fetches).
const maxNegative = 4096

// Remote is a key set fetched from a URL. It refreshes in the background,
// keeps the last good set while the issuer is down, and refetches on an
// unknown kid at most once per RefetchInterval (concurrent misses share
// one fetch). Safe for concurrent use.
type Remote struct {
	url string
	o   Options
	set atomic.Pointer[Set]

	mu        sync.Mutex
	inflight  *fetchCall
	lastFetch time.Time
	negative  map[string]time.Time

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type fetchCall struct {
	done   chan struct{}
	maxAge time.Duration
	err    error
}

// NewRemote starts fetching url in the background; Close stops it.
func NewRemote(url string, o Options) *Remote {
	o.defaults()
	r := &Remote{
		url:      url,
		o:        o,
		negative: map[string]time.Time{},
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go r.run()
	return r
}

// URL is the address the set is fetched from.
func (r *Remote) URL() string { return r.url }

// Close stops the background refresh. Keys keeps answering from the last
// good set (a request may still hold the Remote after a config change).
func (r *Remote) Close() {
	r.closeOnce.Do(func() {
		close(r.stop)
		<-r.done
	})
}

// Keys implements Source.
func (r *Remote) Keys(ctx context.Context, kid string) ([]*Key, error) {
	if s := r.set.Load(); s != nil {
		if k, ok := s.lookup(kid); ok {
			return k, nil
		}
	}
	r.mu.Lock()
	now := r.o.Now()
	if until, ok := r.negative[kid]; ok && now.Before(until) {
		r.mu.Unlock()
		return nil, r.missErr()
	}
	call := r.inflight
	if call == nil {
		if now.Sub(r.lastFetch) < r.o.RefetchInterval {
			r.rememberUnknown(kid, now)
			r.mu.Unlock()
			return nil, r.missErr()
		}
		call = r.startFetchLocked(now)
	}
	r.mu.Unlock()

	select {
	case <-call.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("jwks %s: waiting for fetch: %w", r.url, ctx.Err())
	}
	if s := r.set.Load(); s != nil {
		if k, ok := s.lookup(kid); ok {
			return k, nil
		}
	}
	r.mu.Lock()
	r.rememberUnknown(kid, r.o.Now())
	r.mu.Unlock()
	return nil, r.missErr()
}

// missErr distinguishes "the issuer does not have this key" from "we never
// got the issuer's keys", which must not be cached as a denial.
func (r *Remote) missErr() error {
	if r.set.Load() == nil {
		return fmt.Errorf("%w: %s", ErrUnavailable, r.url)
	}
	return ErrUnknownKID
}

func (r *Remote) rememberUnknown(kid string, now time.Time) {
	if len(r.negative) >= maxNegative {
		clear(r.negative)
	}
	r.negative[kid] = now.Add(r.o.NegativeTTL)
}

// startFetchLocked starts one fetch shared by every caller until it ends.
// The fetch runs detached from the request context so that one impatient
// client cannot abort the fetch others wait for; FetchTimeout bounds it.
func (r *Remote) startFetchLocked(now time.Time) *fetchCall {
	call := &fetchCall{done: make(chan struct{})}
	r.inflight = call
	r.lastFetch = now
	go func() {
		call.maxAge, call.err = r.fetch()
		r.mu.Lock()
		r.inflight = nil
		if call.err == nil {
			// A new set may hold kids we called unknown.
			clear(r.negative)
		}
		r.mu.Unlock()
		close(call.done)
	}()
	return call
}

// errStopped ends the refresh loop when Close is called during a fetch.
var errStopped = errors.New("jwks: remote closed")

// refresh fetches now (sharing a fetch already under way). It gives up
// with errStopped when Close is called while waiting: Close must not wait
// for a slow issuer (it runs under the caller's config-update lock).
func (r *Remote) refresh() (time.Duration, error) {
	r.mu.Lock()
	call := r.inflight
	if call == nil {
		call = r.startFetchLocked(r.o.Now())
	}
	r.mu.Unlock()
	select {
	case <-call.done:
		return call.maxAge, call.err
	case <-r.stop:
		return 0, errStopped
	}
}

func (r *Remote) run() {
	defer close(r.done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	retry := r.o.RetryInterval
	for {
		select {
		case <-r.stop:
			return
		case <-timer.C:
		}
		maxAge, err := r.refresh()
		if errors.Is(err, errStopped) {
			return
		}
		next := r.o.RefreshInterval
		if err != nil {
			// Keep the last good keys; try again sooner, backing off.
			next, retry = retry, min(2*retry, r.o.RefreshInterval)
		} else {
			retry = r.o.RetryInterval
			if maxAge > 0 {
				next = min(max(maxAge, r.o.MinRefresh), r.o.MaxRefresh)
			}
		}
		timer.Reset(jitter(next))
	}
}

// jitter spreads a delay by ±10 %.
func jitter(d time.Duration) time.Duration {
	spread := int64(d) / 10
	if spread <= 0 {
		return d
	}
	return d - time.Duration(spread) + time.Duration(rand.Int64N(2*spread))
}

func (r *Remote) fetch() (time.Duration, error) {
	maxAge, err := r.fetchOnce()
	if r.o.OnFetch != nil {
		r.o.OnFetch(err)
	}
	if err != nil {
		r.o.Logger.Warn("jwks fetch failed; keeping last good keys", "jwks_uri", r.url, "error", err)
	}
	return maxAge, err
}

func (r *Remote) fetchOnce() (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.o.FetchTimeout)
	defer cancel()
	ctx, err := fetchContext(ctx, r.url)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return 0, fmt.Errorf("jwks %s: %w", r.url, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := r.o.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("jwks %s: %w", r.url, err)
	}
	defer func() {
		// Drain a little so the connection can be reused; the close error
		// of a response body carries nothing actionable.
		_, _ = io.CopyN(io.Discard, resp.Body, 4096)
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("jwks %s: status %s", r.url, resp.Status)
	}
	if resp.ContentLength > r.o.MaxBytes {
		return 0, fmt.Errorf("jwks %s: response of %d bytes is larger than %d bytes", r.url, resp.ContentLength, r.o.MaxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, r.o.MaxBytes+1))
	if err != nil {
		return 0, fmt.Errorf("jwks %s: read: %w", r.url, err)
	}
	if int64(len(body)) > r.o.MaxBytes {
		return 0, fmt.Errorf("jwks %s: response larger than %d bytes", r.url, r.o.MaxBytes)
	}
	set, err := Parse(body)
	if err != nil {
		return 0, fmt.Errorf("jwks %s: %w", r.url, err)
	}
	r.set.Store(set)
	return maxAge(resp.Header.Get("Cache-Control")), nil
}

// maxAge returns the Cache-Control max-age, 0 when absent or invalid.
func maxAge(cc string) time.Duration {
	for part := range strings.SplitSeq(cc, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !strings.EqualFold(name, "max-age") {
			continue
		}
		n, err := strconv.Atoi(strings.Trim(val, `"`))
		if err != nil || n <= 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	return 0
}
