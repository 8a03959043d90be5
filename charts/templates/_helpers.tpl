{{/*
Names and labels.
*/}}
{{- define "oci-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "oci-gateway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "oci-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "oci-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "oci-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels without the selector labels (for objects that must not be selected, e.g. tests). */}}
{{- define "oci-gateway.baseLabels" -}}
helm.sh/chart: {{ include "oci-gateway.chart" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: oci-anthropic-gateway
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "oci-gateway.labels" -}}
{{ include "oci-gateway.baseLabels" . }}
{{ include "oci-gateway.selectorLabels" . }}
app.kubernetes.io/component: gateway
{{- end }}

{{- define "oci-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "oci-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "oci-gateway.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end }}

{{/* Paths inside the container. The config and keys are directories (not subPath mounts),
so Kubernetes' atomic symlink swap reaches the pod and the gateway reloads the files. */}}
{{- define "oci-gateway.configDir" -}}/etc/oci-gateway/config{{- end }}
{{- define "oci-gateway.configPath" -}}{{ include "oci-gateway.configDir" . }}/gateway.yaml{{- end }}
{{- define "oci-gateway.keysDir" -}}/etc/oci-gateway/keys{{- end }}
{{- define "oci-gateway.keysFile" -}}{{ include "oci-gateway.keysDir" . }}/{{ .Values.clientAuth.secretKey }}{{- end }}
{{- define "oci-gateway.metricsDir" -}}/tmp/prometheus-multiproc{{- end }}

{{- define "oci-gateway.ociApiKeySecretName" -}}
{{- if .Values.oci.apiKey.existingSecret }}
{{- .Values.oci.apiKey.existingSecret }}
{{- else }}
{{- printf "%s-oci-api-key" (include "oci-gateway.fullname" .) }}
{{- end }}
{{- end }}

{{- define "oci-gateway.clientKeysSecretName" -}}
{{- if .Values.clientAuth.existingSecret }}
{{- .Values.clientAuth.existingSecret }}
{{- else }}
{{- printf "%s-client-keys" (include "oci-gateway.fullname" .) }}
{{- end }}
{{- end }}

{{/* Whether any client authentication is configured (keys or OIDC). */}}
{{- define "oci-gateway.clientAuthConfigured" -}}
{{- if or (include "oci-gateway.clientAuthEnabled" .) .Values.clientAuth.oidc.issuer }}true{{- end }}
{{- end }}

{{/* Whether client API keys are mounted (a Secret created here or an existing one). */}}
{{- define "oci-gateway.clientAuthEnabled" -}}
{{- if and .Values.clientAuth.enabled (or .Values.clientAuth.existingSecret .Values.clientAuth.keys) }}true{{- end }}
{{- end }}

{{/*
The gateway config file (gateway.yaml), built from values. The auth-dependent keys
(oci.auth, config_file, key_file, profile) and client_auth.api_keys_file are derived from the
auth mode and the mounts; everything in .Values.extraConfig is merged over the result.
*/}}
{{- define "oci-gateway.gatewayConfig" -}}
{{- $v := .Values -}}
{{- $oci := dict "compartment_id" $v.oci.compartmentId "auth" $v.oci.auth -}}
{{- if $v.oci.region }}{{- $_ := set $oci "region" $v.oci.region -}}{{- end }}
{{- if $v.oci.endpoint }}{{- $_ := set $oci "endpoint" $v.oci.endpoint -}}{{- end }}
{{- if eq $v.oci.auth "api_key" }}
{{- $_ := set $oci "config_file" (printf "%s/%s" $v.oci.apiKey.mountPath $v.oci.apiKey.configKey) -}}
{{- $_ := set $oci "key_file" (printf "%s/%s" $v.oci.apiKey.mountPath $v.oci.apiKey.privateKeyKey) -}}
{{- $_ := set $oci "profile" $v.oci.apiKey.profile -}}
{{- end }}
{{- with $v.oci.timeouts }}{{- $_ := set $oci "timeouts" . -}}{{- end }}
{{- with $v.oci.retries }}{{- $_ := set $oci "retries" . -}}{{- end }}
{{- $cfg := dict "oci" $oci "models" (deepCopy $v.models) -}}
{{- with $v.aliases }}{{- $_ := set $cfg "aliases" (deepCopy .) -}}{{- end }}
{{- with $v.defaultModel }}{{- $_ := set $cfg "default_model" . -}}{{- end }}
{{- $ca := dict -}}
{{- if include "oci-gateway.clientAuthEnabled" . }}
{{- $_ := set $ca "api_keys_file" (include "oci-gateway.keysFile" .) -}}
{{- end }}
{{- with $v.clientAuth.oidc }}{{- if .issuer }}
{{- $o := dict "issuer" .issuer "audience" .audience "user_claim" .userClaim "groups_claim" .groupsClaim "algorithms" .algorithms "leeway" .leeway "require_team" .requireTeam -}}
{{- with .jwksUrl }}{{- $_ := set $o "jwks_url" . -}}{{- end }}
{{- $_ := set $ca "oidc" $o -}}
{{- end }}{{- end }}
{{- if and $v.clientAuth.allowAnonymous (not $ca) }}{{- $_ := set $ca "allow_anonymous" true -}}{{- end }}
{{- with $ca }}{{- $_ := set $cfg "client_auth" . -}}{{- end }}
{{- with $v.teams }}{{- $_ := set $cfg "teams" (deepCopy .) -}}{{- end }}
{{- with $v.limits.redisUrl }}{{- $_ := set $cfg "limits" (dict "redis_url" .) -}}{{- end }}
{{- with $v.server }}{{- $_ := set $cfg "server" . -}}{{- end }}
{{- with $v.observability }}{{- $_ := set $cfg "observability" . -}}{{- end }}
{{- $cfg = mergeOverwrite $cfg (deepCopy $v.extraConfig) -}}
{{- toYaml $cfg }}
{{- end }}

{{/* The Claude Code model names for NOTES.txt: explicit values, else the alias targets. */}}
{{- define "oci-gateway.claudeModel" -}}
{{- $ctx := index . 0 -}}{{- $family := index . 1 -}}
{{- $explicit := get $ctx.Values.claudeCode (printf "%sModel" $family) -}}
{{- if $explicit -}}{{ $explicit }}
{{- else -}}{{ get $ctx.Values.aliases (printf "claude-%s-*" $family) | default $ctx.Values.defaultModel }}
{{- end -}}
{{- end }}
