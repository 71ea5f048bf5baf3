package api

import (
	"context"
	"net/http"
	"net/url"
)

var _ BondBackend = (*Client)(nil)

// BondStatus returns the network bond's configuration and state.
func (c *Client) BondStatus(ctx context.Context) (BondStatus, error) {
	var st BondStatus
	err := c.do(ctx, http.MethodGet, "/v1/bond", nil, &st)
	return st, err
}

// AddBondMember adds a NIC to the bond (the first one lends the bond its
// addresses) and returns the bond after it.
func (c *Client) AddBondMember(ctx context.Context, r BondAddRequest) (BondStatus, error) {
	var st BondStatus
	err := c.do(ctx, http.MethodPost, "/v1/bond/members", r, &st)
	return st, err
}

// RemoveBondMember removes a NIC from the bond; removing the last one
// dissolves the bond and the NIC carries its addresses again.
func (c *Client) RemoveBondMember(ctx context.Context, nic string) error {
	return c.do(ctx, http.MethodDelete, "/v1/bond/members/"+url.PathEscape(nic), nil, nil)
}

// SetBondMode sets the bond's mode (load-balance or failover) and returns
// the bond after it.
func (c *Client) SetBondMode(ctx context.Context, mode string) (BondStatus, error) {
	var st BondStatus
	err := c.do(ctx, http.MethodPut, "/v1/bond/mode", BondModeRequest{Mode: mode}, &st)
	return st, err
}
