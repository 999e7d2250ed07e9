/* resource.c - the resource types keyrotator uses and their REST paths. */
#include "kube/kube.h"

#include <string.h>

const struct kr_kube_resource kr_kube_secrets = {"", "v1", "secrets", "Secret", 1};
const struct kr_kube_resource kr_kube_events = {"", "v1", "events", "Event", 1};
const struct kr_kube_resource kr_kube_deployments = {"apps", "v1", "deployments", "Deployment", 1};
const struct kr_kube_resource kr_kube_statefulsets = {"apps", "v1", "statefulsets", "StatefulSet",
						      1};
const struct kr_kube_resource kr_kube_daemonsets = {"apps", "v1", "daemonsets", "DaemonSet", 1};
const struct kr_kube_resource kr_kube_cronjobs = {"batch", "v1", "cronjobs", "CronJob", 1};
const struct kr_kube_resource kr_kube_leases = {"coordination.k8s.io", "v1", "leases", "Lease", 1};
const struct kr_kube_resource kr_kube_namespaces = {"", "v1", "namespaces", "Namespace", 0};
const struct kr_kube_resource kr_kube_keystores = {"keyrotator.io", "v1alpha1", "keystores",
						   "KeyStore", 1};
const struct kr_kube_resource kr_kube_clusterkeystores = {"keyrotator.io", "v1alpha1",
							  "clusterkeystores", "ClusterKeyStore", 0};
const struct kr_kube_resource kr_kube_keyrotations = {"keyrotator.io", "v1alpha1", "keyrotations",
						      "KeyRotation", 1};

static int is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/*
 * Append "/" and `seg` percent-escaped (RFC 3986 unreserved characters kept). An empty
 * segment, ".", or ".." would change the path's meaning, so they are refused.
 */
static enum kr_status add_segment(struct kr_buf *out, const char *seg)
{
	static const char hex[] = "0123456789ABCDEF";
	enum kr_status rc;

	if (!seg[0] || !strcmp(seg, ".") || !strcmp(seg, ".."))
		return KR_EINVAL;
	rc = kr_buf_addch(out, '/');
	for (const unsigned char *p = (const unsigned char *)seg; *p && rc == KR_OK; p++) {
		if (is_unreserved(*p)) {
			rc = kr_buf_addch(out, (char)*p);
		} else {
			char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};

			rc = kr_buf_add(out, esc, sizeof(esc));
		}
	}
	return rc;
}

enum kr_status kr_kube_path(struct kr_buf *out, const struct kr_kube_resource *res, const char *ns,
			    const char *name, const char *subresource)
{
	enum kr_status rc;
	size_t mark = out->len;
	int has_name = name && name[0];

	if ((subresource && subresource[0] && !has_name) ||
	    (has_name && res->namespaced && !(ns && ns[0])))
		return KR_EINVAL;
	if (res->group[0]) {
		rc = kr_buf_adds(out, "/apis");
		if (rc == KR_OK)
			rc = add_segment(out, res->group);
	} else {
		rc = kr_buf_adds(out, "/api");
	}
	if (rc == KR_OK)
		rc = add_segment(out, res->version);
	/* A cluster-scoped resource ignores the namespace, as kubectl does. */
	if (rc == KR_OK && res->namespaced && ns && ns[0]) {
		rc = kr_buf_adds(out, "/namespaces");
		if (rc == KR_OK)
			rc = add_segment(out, ns);
	}
	if (rc == KR_OK)
		rc = add_segment(out, res->plural);
	if (rc == KR_OK && has_name)
		rc = add_segment(out, name);
	if (rc == KR_OK && subresource && subresource[0])
		rc = add_segment(out, subresource);
	if (rc != KR_OK) {
		out->len = mark;
		out->data[mark] = '\0';
	}
	return rc;
}
