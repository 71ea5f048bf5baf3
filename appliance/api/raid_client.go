package api

import (
	"context"
	"net/http"
	"net/url"
)

var _ RaidBackend = (*Client)(nil)

// RaidStatus returns the md arrays and their members.
func (c *Client) RaidStatus(ctx context.Context) (RaidStatus, error) {
	var st RaidStatus
	err := c.do(ctx, http.MethodGet, "/v1/raid", nil, &st)
	return st, err
}

// ScrubRaid starts a check of array and returns it as the check starts.
func (c *Client) ScrubRaid(ctx context.Context, array string) (RaidArray, error) {
	var a RaidArray
	err := c.do(ctx, http.MethodPost, "/v1/raid/"+url.PathEscape(array)+"/scrub", nil, &a)
	return a, err
}

// ReplaceRaidMember rebuilds a member of array onto a new device and
// returns the array as the rebuild starts.
func (c *Client) ReplaceRaidMember(ctx context.Context, array string, r RaidReplaceRequest) (RaidArray, error) {
	var a RaidArray
	err := c.do(ctx, http.MethodPost, "/v1/raid/"+url.PathEscape(array)+"/replace", r, &a)
	return a, err
}
