{{/*
The prefix of every name, and the gateway's --release: crates/executor/src/rbac.rs derives the executor
account names from it (<prefix>-gateway, -reader, -operator, -cluster-reader).
*/}}
{{- define "docketops.prefix" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "docketops.gatewayAccount" -}}
{{ include "docketops.prefix" . }}-gateway
{{- end -}}

{{- define "docketops.clusterReaderAccount" -}}
{{ include "docketops.prefix" . }}-cluster-reader
{{- end -}}

{{/* Labels of every object: the two that rbac.rs puts on its manifests, and Helm's usual ones. */}}
{{- define "docketops.labels" -}}
app.kubernetes.io/name: docketops-ledger
app.kubernetes.io/instance: {{ include "docketops.prefix" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The gateway pods (not the migration Job's: the Service must not send requests there). */}}
{{- define "docketops.selectorLabels" -}}
app.kubernetes.io/name: docketops-ledger
app.kubernetes.io/instance: {{ include "docketops.prefix" . }}
app.kubernetes.io/component: gateway
{{- end -}}

{{- define "docketops.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}

{{- define "docketops.postgres" -}}
{{- if eq .Values.database.type "postgres" }}true{{ end -}}
{{- end -}}

{{/* Whether the chart makes its own Secret (something to keep, and no existingSecret). */}}
{{- define "docketops.ownSecret" -}}
{{- if and (not .Values.existingSecret) (or .Values.database.url .Values.signingKey.pem .Values.bootstrapAdminKey) }}true{{ end -}}
{{- end -}}

{{- define "docketops.secretName" -}}
{{- default (include "docketops.prefix" .) .Values.existingSecret -}}
{{- end -}}

{{- define "docketops.migrationJob" -}}
{{- if and (include "docketops.postgres" .) .Values.migrations.job.enabled }}true{{ end -}}
{{- end -}}

{{/* The namespaces the guardrails allow: guardrails.allowedNamespaces, or else the governed ones. */}}
{{- define "docketops.allowedNamespaces" -}}
{{- toJson (default .Values.governedNamespaces .Values.guardrails.allowedNamespaces) -}}
{{- end -}}

{{/*
Settings that would leave a broken or unsafe release fail the render with a message saying what to change.
Included by the templates that depend on them.
*/}}
{{- define "docketops.validate" -}}
{{- $type := .Values.database.type -}}
{{- if not (has $type (list "sqlite" "postgres")) -}}
{{- fail (printf "database.type must be sqlite or postgres, not %q" $type) -}}
{{- end -}}
{{- if and (gt (int .Values.replicaCount) 1) (eq $type "sqlite") -}}
{{- fail (printf "replicaCount %d needs PostgreSQL: the embedded SQLite ledger lives in one pod's volume. Set database.type=postgres with database.url (or existingSecret), or replicaCount=1" (int .Values.replicaCount)) -}}
{{- end -}}
{{- if and (eq $type "postgres") (not .Values.existingSecret) -}}
{{- if not .Values.database.url -}}
{{- fail "database.type postgres needs database.url (postgres://USER:PASSWORD@HOST:PORT/DB) or existingSecret holding it" -}}
{{- end -}}
{{- if not .Values.signingKey.pem -}}
{{- fail "database.type postgres needs one signing key shared by every replica: set signingKey.pem (openssl genpkey -algorithm ed25519) or existingSecret holding it" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.database.url (not (regexMatch "^postgres(ql)?://" .Values.database.url)) -}}
{{- fail "database.url must start with postgres:// or postgresql://" -}}
{{- end -}}
{{- if and .Values.database.url (eq $type "sqlite") -}}
{{- fail "database.url is set but database.type is sqlite: set database.type=postgres" -}}
{{- end -}}
{{- if and .Values.policies .Values.opa.url -}}
{{- fail "policies and opa.url exclude each other: the embedded engine runs the policies, OPA its own" -}}
{{- end -}}
{{- if not (has .Values.gateway.policyMode (list "enforce" "ledger")) -}}
{{- fail "gateway.policyMode must be enforce or ledger" -}}
{{- end -}}
{{- if not (has .Values.gateway.logFormat (list "text" "json")) -}}
{{- fail "gateway.logFormat must be text or json" -}}
{{- end -}}
{{- $blocked := list "kube-system" "kube-public" "kube-node-lease" .Release.Namespace -}}
{{- range .Values.governedNamespaces -}}
{{- if has . $blocked -}}
{{- fail (printf "governedNamespaces: %s cannot be governed (kube-system, kube-public, kube-node-lease and the gateway's own namespace %s are always blocked)" . $.Release.Namespace) -}}
{{- end -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$" .) -}}
{{- fail (printf "governedNamespaces: %q is not a valid namespace name" .) -}}
{{- end -}}
{{- end -}}
{{- if ne (len .Values.governedNamespaces) (len (uniq .Values.governedNamespaces)) -}}
{{- fail "governedNamespaces lists a namespace twice" -}}
{{- end -}}
{{- range $file, $_ := .Values.policies -}}
{{- if not (regexMatch "^[A-Za-z0-9][A-Za-z0-9._-]*\\.rego$" $file) -}}
{{- fail (printf "policies: %q must be a file name ending in .rego" $file) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The security contexts and volumes shared by the gateway and the migration Job. */}}
{{- define "docketops.podSecurity" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* An environment variable from the release's Secret (optional ones may be absent from it). */}}
{{- define "docketops.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "docketops.secretName" .root }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end -}}

{{/* A Role (and its binding to the gateway) allowing to impersonate exactly the named accounts of one namespace. */}}
{{- define "docketops.impersonationRole" -}}
{{- $prefix := include "docketops.prefix" .root }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $prefix }}-impersonate
  namespace: {{ .namespace }}
  labels:
    {{- include "docketops.labels" .root | nindent 4 }}
rules:
  - apiGroups: [""]
    resources: ["serviceaccounts"]
    verbs: ["impersonate"]
    resourceNames: {{ toJson .accounts }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $prefix }}-impersonate
  namespace: {{ .namespace }}
  labels:
    {{- include "docketops.labels" .root | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $prefix }}-impersonate
subjects:
  - kind: ServiceAccount
    name: {{ include "docketops.gatewayAccount" .root }}
    namespace: {{ .root.Release.Namespace }}
{{- end -}}
