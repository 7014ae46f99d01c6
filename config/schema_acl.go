package config

// aclKeys are the keys of the authorization chain (acl.*); titles for their documentation groups go in
// aclGroupTitles.
var aclKeys = []Key{}

// aclGroupTitles names the documentation groups of aclKeys.
var aclGroupTitles = map[string]string{}
