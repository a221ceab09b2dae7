import type { ProviderConfig } from '../config/schema.js';
import { anthropicAdapter } from './anthropic.js';
import { geminiAdapter } from './gemini.js';
import { openAIStyleAdapter } from './openai.js';
import type { ProviderAdapter } from './provider.js';

/** The adapter for one configured provider. `simUrl` is the in-process simulator, when one runs. */
export function createAdapter(config: ProviderConfig, simUrl?: string): ProviderAdapter {
  switch (config.type) {
    case 'openai':
      return openAIStyleAdapter({
        baseUrl: config.baseUrl ?? 'https://api.openai.com/v1',
        headers: {
          authorization: `Bearer ${config.apiKey}`,
          ...(config.organization && { 'openai-organization': config.organization }),
          ...config.headers,
        },
      });
    case 'openai-compatible':
      return openAIStyleAdapter({
        baseUrl: config.baseUrl,
        headers: { ...(config.apiKey && { authorization: `Bearer ${config.apiKey}` }), ...config.headers },
      });
    case 'sim': {
      const base = config.baseUrl ?? simUrl;
      if (!base) throw new Error('a "sim" provider without baseUrl needs the in-process simulator');
      return openAIStyleAdapter({
        baseUrl: `${base.replace(/\/+$/, '').replace(/\/v1$/, '')}/v1`,
        headers: { ...config.headers },
      });
    }
    case 'azure-openai': {
      const deployment = (model: string) => encodeURIComponent(config.deployments[model] ?? model);
      return openAIStyleAdapter({
        baseUrl: `${config.endpoint.replace(/\/+$/, '')}/openai/deployments`,
        headers: { 'api-key': config.apiKey, ...config.headers },
        path: (operation, target) =>
          `${deployment(target.model)}/${operation}?api-version=${encodeURIComponent(config.apiVersion)}`,
        sendModel: false,
      });
    }
    case 'anthropic':
      return anthropicAdapter({
        baseUrl: config.baseUrl,
        apiKey: config.apiKey,
        version: config.version,
        headers: config.headers,
      });
    case 'gemini':
      return geminiAdapter({ baseUrl: config.baseUrl, apiKey: config.apiKey, headers: config.headers });
  }
}
