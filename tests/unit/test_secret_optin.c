/* test_secret_optin.c - which Secrets a KeyRotation may use (design.md §1b): the opt-in
 * annotation, the labels of Secrets an earlier keyrotator created, the owner reference of
 * `<name>-rotation`, the refusal they lead to, and that a refused world reads and writes
 * nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconciler/internal.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define UID  "6f1c2a9e-0d1b-4c55-9a7e-3f1b2c3d4e5f"

/* ---- the pure checks -------------------------------------------------------------- */

struct check_case {
	const char *name;
	const char *secret; /* JSON; NULL: no object at all */
	const char *kr;	    /* the KeyRotation's name */
	const char *uid;    /* its metadata.uid */
	bool opted_in, created_for, owned_by;
};

#define ANN(v) "{\"metadata\":{\"annotations\":{\"keyrotator.io/keyrotation\":" v "}}}"
#define LABELS(by, kr)                                                                             \
	"{\"metadata\":{\"labels\":{\"app.kubernetes.io/managed-by\":" by                          \
	",\"keyrotator.io/keyrotation\":" kr "}}}"
#define OWNERS(refs) "{\"metadata\":{\"ownerReferences\":" refs "}}"
#define KR_REF(uid)                                                                                \
	"{\"apiVersion\":\"keyrotator.io/v1alpha1\",\"kind\":\"KeyRotation\",\"name\":\"sirius\"," \
	"\"uid\":" uid ",\"controller\":true}"

static const struct check_case check_cases[] = {
    /* the annotation */
    {"annotation, exact", ANN("\"sirius\""), "sirius", UID, true, false, false},
    {"annotation, other name", ANN("\"vega\""), "sirius", UID, false, false, false},
    {"annotation, case differs", ANN("\"Sirius\""), "sirius", UID, false, false, false},
    {"list", ANN("\"vega,sirius,altair\""), "sirius", UID, true, false, false},
    {"list with spaces", ANN("\" vega ,  sirius ,altair \""), "sirius", UID, true, false, false},
    {"list with tabs", ANN("\"vega,\\tsirius\\t\""), "sirius", UID, true, false, false},
    {"list, first", ANN("\"sirius, vega\""), "sirius", UID, true, false, false},
    {"list, empty items", ANN("\",,sirius,\""), "sirius", UID, true, false, false},
    {"name is a prefix of the value", ANN("\"sirius-api\""), "sirius", UID, false, false, false},
    {"value is a prefix of the name", ANN("\"sirius\""), "sirius-api", UID, false, false, false},
    {"name is a suffix of an item", ANN("\"vega, prod-sirius\""), "sirius", UID, false, false,
     false},
    {"prefix in a list", ANN("\"vega,sirius-api, siriusx\""), "sirius", UID, false, false, false},
    {"space inside a name", ANN("\"sir ius\""), "sirius", UID, false, false, false},
    {"empty value", ANN("\"\""), "sirius", UID, false, false, false},
    {"only commas and blanks", ANN("\" , ,\""), "sirius", UID, false, false, false},
    {"empty KeyRotation name", ANN("\" , sirius\""), "", UID, false, false, false},
    {"wildcard is no wildcard", ANN("\"*\""), "sirius", UID, false, false, false},
    /* missing or malformed */
    {"no metadata", "{\"data\":{\"K\":\"c2tfYWJj\"}}", "sirius", UID, false, false, false},
    {"no object", NULL, "sirius", UID, false, false, false},
    {"no annotations", "{\"metadata\":{\"name\":\"api-key\"}}", "sirius", UID, false, false, false},
    {"other annotations", "{\"metadata\":{\"annotations\":{\"keyrotator.io/rotate\":\"sirius\"}}}",
     "sirius", UID, false, false, false},
    {"annotation is a number", ANN("1"), "sirius", UID, false, false, false},
    {"annotation is true", ANN("true"), "sirius", UID, false, false, false},
    {"annotation is null", ANN("null"), "sirius", UID, false, false, false},
    {"annotation is a list", ANN("[\"sirius\"]"), "sirius", UID, false, false, false},
    {"annotations is a string", "{\"metadata\":{\"annotations\":\"sirius\"}}", "sirius", UID, false,
     false, false},
    {"metadata is a list", "{\"metadata\":[{\"annotations\":{}}]}", "sirius", UID, false, false,
     false},
    /* the labels of a Secret an earlier keyrotator created for this KeyRotation */
    {"both labels", LABELS("\"keyrotator\"", "\"sirius\""), "sirius", UID, false, true, false},
    {"labels, other KeyRotation", LABELS("\"keyrotator\"", "\"vega\""), "sirius", UID, false, false,
     false},
    {"labels, other manager", LABELS("\"helm\"", "\"sirius\""), "sirius", UID, false, false, false},
    {"labels, a list is no list", LABELS("\"keyrotator\"", "\"vega,sirius\""), "sirius", UID, false,
     false, false},
    {"labels, a prefix", LABELS("\"keyrotator\"", "\"sirius\""), "siriu", UID, false, false, false},
    {"labels, empty name", LABELS("\"keyrotator\"", "\"\""), "", UID, false, false, false},
    {"labels, not strings", LABELS("1", "true"), "sirius", UID, false, false, false},
    {"only the managed-by label",
     "{\"metadata\":{\"labels\":{\"app.kubernetes.io/managed-by\":\"keyrotator\"}}}", "sirius", UID,
     false, false, false},
    {"only the keyrotation label",
     "{\"metadata\":{\"labels\":{\"keyrotator.io/keyrotation\":\"sirius\"}}}", "sirius", UID, false,
     false, false},
    {"the labels as annotations",
     "{\"metadata\":{\"annotations\":{\"app.kubernetes.io/managed-by\":\"keyrotator\"}}}", "sirius",
     UID, false, false, false},
    {"annotation and labels",
     "{\"metadata\":{\"annotations\":{\"keyrotator.io/keyrotation\":\"sirius\"},"
     "\"labels\":{\"app.kubernetes.io/managed-by\":\"keyrotator\","
     "\"keyrotator.io/keyrotation\":\"sirius\"}}}",
     "sirius", UID, true, true, false},
    /* owner references */
    {"owned", OWNERS("[" KR_REF("\"" UID "\"") "]"), "sirius", UID, false, false, true},
    {"owner with another uid", OWNERS("[" KR_REF("\"0000-other\"") "]"), "sirius", UID, false,
     false, false},
    {"owner uid is a prefix", OWNERS("[" KR_REF("\"6f1c2a9e\"") "]"), "sirius", UID, false, false,
     false},
    {"owner of another kind",
     OWNERS("[{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"name\":\"sirius\","
	    "\"uid\":\"" UID "\"}]"),
     "sirius", UID, false, false, false},
    {"second owner is ours", OWNERS("[" KR_REF("\"0000-other\"") "," KR_REF("\"" UID "\"") "]"),
     "sirius", UID, false, false, true},
    {"owner uid is a number", OWNERS("[" KR_REF("42") "]"), "sirius", UID, false, false, false},
    {"owner without uid", OWNERS("[{\"kind\":\"KeyRotation\",\"name\":\"sirius\"}]"), "sirius", UID,
     false, false, false},
    {"owner references not a list", OWNERS(KR_REF("\"" UID "\"")), "sirius", UID, false, false,
     false},
    {"owner references empty", OWNERS("[]"), "sirius", UID, false, false, false},
    {"we have no uid", OWNERS("[" KR_REF("\"\"") "]"), "sirius", "", false, false, false},
    {"owner, name alone is not enough", OWNERS("[" KR_REF("\"0000-other\"") "]"), "sirius",
     "0000-else", false, false, false},
};

static void test_checks_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(check_cases); i++) {
		const struct check_case *c = &check_cases[i];
		cJSON *s = c->secret ? cJSON_Parse(c->secret) : NULL;

		if (c->secret && !s)
			fail_msg("%s: fixture is not JSON", c->name);
		if (kr_secret_opted_in(s, c->kr) != c->opted_in ||
		    kr_secret_created_for(s, c->kr) != c->created_for ||
		    kr_secret_owned_by(s, c->uid) != c->owned_by)
			fail_msg("%s: opted_in %d created_for %d owned_by %d", c->name,
				 kr_secret_opted_in(s, c->kr), kr_secret_created_for(s, c->kr),
				 kr_secret_owned_by(s, c->uid));
		cJSON_Delete(s);
	}
}

static void test_checks_null_arguments(void **state)
{
	cJSON *s = cJSON_Parse(ANN("\"sirius\""));

	(void)state;
	assert_false(kr_secret_opted_in(s, NULL));
	assert_false(kr_secret_created_for(s, NULL));
	assert_false(kr_secret_owned_by(s, NULL));
	assert_false(kr_secret_opted_in(NULL, NULL));
	cJSON_Delete(s);
}

/* ---- the verdict on the two Secrets of one KeyRotation --------------------------- */

struct usable_case {
	const char *name;
	const char *secret_name; /* spec.secretRef.name */
	const char *consumer;	 /* JSON; NULL: absent */
	const char *rsecret;	 /* JSON; NULL: absent */
	const char *reason;	 /* "": usable */
	const char *message_has;
};

#define OURS	     OWNERS("[" KR_REF("\"" UID "\"") "]")
#define WITH_DATA(m) "{\"metadata\":" m ",\"data\":{\"API_KEY\":\"c2tfYWJj\"}}"

static const struct usable_case usable_cases[] = {
    {"both absent: we create them", "api-key", NULL, NULL, "", ""},
    {"opted in, rotation Secret ours", "api-key", ANN("\"sirius\""), OURS, "", ""},
    {"opted in among others", "api-key", ANN("\"vega, sirius\""), NULL, "", ""},
    {"created by an earlier keyrotator", "api-key", LABELS("\"keyrotator\"", "\"sirius\""), OURS,
     "", ""},
    {"not opted in", "api-key", WITH_DATA("{\"name\":\"api-key\"}"), NULL, "SecretNotOptedIn",
     "Secret ns/api-key is not managed by this KeyRotation: add the annotation "
     "keyrotator.io/keyrotation: sirius to it (someone who may edit that Secret must opt it "
     "in)"},
    {"opted in for another KeyRotation", "api-key", ANN("\"sirius-api\""), OURS, "SecretNotOptedIn",
     "keyrotator.io/keyrotation: sirius"},
    {"labels of another KeyRotation", "api-key", LABELS("\"keyrotator\"", "\"vega\""), NULL,
     "SecretNotOptedIn", "ns/api-key"},
    {"rotation Secret not ours", "api-key", ANN("\"sirius\""),
     OWNERS("[" KR_REF("\"0000-other\"") "]"), "RotationSecretNotOwned",
     "Secret ns/sirius-rotation is not owned by this KeyRotation"},
    {"rotation Secret without owner", "api-key", NULL, "{\"metadata\":{}}",
     "RotationSecretNotOwned", "delete or rename that Secret, or rename the KeyRotation"},
    {"rotation Secret with our labels only", "api-key", NULL,
     LABELS("\"keyrotator\"", "\"sirius\""), "RotationSecretNotOwned", "uid " UID},
    {"secretRef names the rotation Secret", "sirius-rotation", NULL, NULL, "InvalidSecretRef",
     "spec.secretRef.name: Secret ns/sirius-rotation is this KeyRotation's own rotation Secret"},
    {"secretRef names the rotation Secret, which we own", "sirius-rotation", OURS, OURS,
     "InvalidSecretRef", "name the consumers' Secret"},
};

static void test_usable_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(usable_cases); i++) {
		const struct usable_case *c = &usable_cases[i];
		struct kr_observed obs = {.ns = "ns", .name = "sirius"};
		cJSON *consumer = c->consumer ? cJSON_Parse(c->consumer) : NULL;
		cJSON *rsecret = c->rsecret ? cJSON_Parse(c->rsecret) : NULL;
		bool ok = kr_secrets_usable(&obs, UID, c->secret_name, "sirius-rotation", consumer,
					    rsecret);

		if ((c->consumer && !consumer) || (c->rsecret && !rsecret))
			fail_msg("%s: fixture is not JSON", c->name);
		if (ok != !c->reason[0] || strcmp(obs.refusal_reason, c->reason) != 0 ||
		    !strstr(obs.refusal, c->message_has))
			fail_msg("%s: got %d \"%s\" \"%s\"", c->name, ok, obs.refusal_reason,
				 obs.refusal);
		assert_int_equal(ok, obs.refusal[0] == '\0');
		cJSON_Delete(consumer);
		cJSON_Delete(rsecret);
	}
}

/* The first refusal of a reconcile is the one reported. */
static void test_first_refusal_stays(void **state)
{
	struct kr_observed obs = {.ns = "ns", .name = "sirius"};
	cJSON *theirs = cJSON_Parse(WITH_DATA("{\"name\":\"api-key\"}"));

	(void)state;
	kr_refuse(&obs, "KeyStoreNotAllowed", "key store %s is not allowed", "x");
	assert_false(kr_secrets_usable(&obs, UID, "api-key", "sirius-rotation", theirs, NULL));
	assert_string_equal(obs.refusal_reason, "KeyStoreNotAllowed");
	assert_string_equal(obs.refusal, "key store x is not allowed");
	cJSON_Delete(theirs);
}

/* ---- a refused world: nothing read, nothing written --------------------------------- */

static void world_init(struct kr_world *w, struct kr_reconciler *r)
{
	memset(w, 0, sizeof(*w));
	w->r = r;
	w->client = NULL; /* any API call would crash: these paths make none */
	w->ns = w->obs.ns = "ns";
	w->name = w->obs.name = "sirius";
	snprintf(w->uid, sizeof(w->uid), "%s", UID);
	snprintf(w->rsecret_name, sizeof(w->rsecret_name), "sirius-rotation");
	w->have_spec = true;
	w->spec.secret_name = "api-key";
	w->spec.secret_key = "API_KEY";
}

struct own_ref_case {
	const char *field;
	const char *name;
};

/* A credential ref that names one of the Secrets holding our keys is refused unread. */
static void test_credential_never_our_keys(void **state)
{
	static const struct own_ref_case cases[] = {
	    {"spec.analysis.prometheus.bearerTokenSecretRef", "sirius-rotation"},
	    {"spec.verify.caSecretRef", "api-key"},
	    {"spec.keyStore.passwordSecretRef", "sirius-rotation"},
	};
	struct kr_reconciler r = {0};

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		struct kr_world w;
		struct kr_secret *out = (struct kr_secret *)&w; /* must become NULL */
		struct kr_error err = {0};
		char want[KR_ROT_MSG_MAX];

		world_init(&w, &r);
		assert_int_equal(kr_world_secret_ref(&w, cases[i].field, cases[i].name, "k",
						     KR_SECRET_TEXT_MAX, &out, &err),
				 KR_EAUTH);
		assert_null(out);
		assert_string_equal(w.obs.refusal_reason, "CredentialSecretNotOptedIn");
		snprintf(want, sizeof(want),
			 "%s: Secret ns/%s holds this KeyRotation's keys and never serves as a "
			 "credential; name another Secret",
			 cases[i].field, cases[i].name);
		assert_string_equal(w.obs.refusal, want);
		assert_string_equal(err.msg, want);
	}
}

/* Once refused, no Secret a spec field names is read, not even an administrator's. */
static void test_refused_reads_no_credential(void **state)
{
	struct kr_reconciler r = {0};
	struct kr_world w;
	struct kr_secret *out = NULL;
	struct kr_error err = {0};

	(void)state;
	world_init(&w, &r);
	kr_refuse(&w.obs, "SecretNotOptedIn", "Secret ns/api-key is not managed");
	assert_int_equal(kr_world_secret_ref(&w, "spec.verify.caSecretRef", "ca", "ca.crt",
					     KR_SECRET_TEXT_MAX, &out, &err),
			 KR_EAUTH);
	assert_null(out);
	assert_non_null(strstr(err.msg, "not read: Secret ns/api-key is not managed"));
	assert_int_equal(kr_world_secret_ref_admin(&w, "spec.keyStoreRef", "keyrotator-system",
						   "valkey-auth", "password", KR_SECRET_TEXT_MAX,
						   &out, &err),
			 KR_EAUTH);
	assert_null(out);
	assert_non_null(strstr(err.msg, "Secret keyrotator-system/valkey-auth not read"));
	assert_string_equal(w.obs.refusal_reason, "SecretNotOptedIn");
	/* not set: nothing to read, nothing refused */
	kr_error_clear(&err);
	world_init(&w, &r);
	assert_int_equal(kr_world_secret_ref(&w, "spec.verify.caSecretRef", NULL, "ca.crt",
					     KR_SECRET_TEXT_MAX, &out, &err),
			 KR_OK);
	assert_null(out);
	assert_string_equal(w.obs.refusal_reason, "");
}

/* Whatever action reaches a refused world, no I/O happens. */
static void test_refused_world_acts_on_nothing(void **state)
{
	static const enum kr_action_type io[] = {
	    KR_ACTION_GENERATE,	       KR_ACTION_ACTIVATE,	KR_ACTION_DISTRIBUTE,
	    KR_ACTION_ROLLBACK_SECRET, KR_ACTION_RESTART_STAGE, KR_ACTION_ROLLBACK_RESTART_STAGE,
	    KR_ACTION_REVOKE_OLD,      KR_ACTION_REVOKE_NEW,	KR_ACTION_REPAIR_KEYSTORE,
	    KR_ACTION_CLEANUP,	       KR_ACTION_FINISH,	KR_ACTION_FAIL_FINISH,
	};
	struct kr_reconciler r = {0};
	struct kr_world w;
	struct kr_action a;

	(void)state;
	for (size_t i = 0; i < N(io); i++) {
		struct kr_error err = {0};

		world_init(&w, &r);
		kr_refuse(&w.obs, "RotationSecretNotOwned",
			  "Secret ns/sirius-rotation is not owned");
		memset(&a, 0, sizeof(a));
		a.type = io[i];
		a.stage = 0;
		assert_int_equal(kr_world_act(&w, &a, &err), KR_EAUTH);
		assert_non_null(strstr(err.msg, "refused: Secret ns/sirius-rotation is not owned"));
		assert_null(w.written[KR_CARRY_CONSUMER]);
		assert_null(w.written[KR_CARRY_RSECRET]);
	}
	world_init(&w, &r);
	kr_refuse(&w.obs, "SecretNotOptedIn", "x");
	memset(&a, 0, sizeof(a));
	a.type = KR_ACTION_REFUSE;
	assert_int_equal(kr_world_act(&w, &a, NULL), KR_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_checks_table),
	    cmocka_unit_test(test_checks_null_arguments),
	    cmocka_unit_test(test_usable_table),
	    cmocka_unit_test(test_first_refusal_stays),
	    cmocka_unit_test(test_credential_never_our_keys),
	    cmocka_unit_test(test_refused_reads_no_credential),
	    cmocka_unit_test(test_refused_world_acts_on_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
