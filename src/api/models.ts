/** `GET /v1/models` and `GET /v1/models/{id}`. */
import { Hono } from 'hono';
import type { AppEnv } from '../app-env.js';
import { checkModelAllowed, modelAllowed } from '../keys/access-policy.js';
import type { ModelRegistry, ResolvedModel } from '../gateway/model-registry.js';
import type { ModelObject } from '../openai/responses.js';

function toModelObject(model: ResolvedModel): ModelObject {
  return { id: model.config.name, object: 'model', created: model.created, owned_by: model.config.owned_by };
}

export function modelsRoutes(models: ModelRegistry): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();
  routes.get('/', (context) => {
    const principal = context.get('principal');
    const visible = models.list(principal?.project).filter((model) => !principal || modelAllowed(principal, model.config.name));
    return context.json({ object: 'list', data: visible.map(toModelObject) });
  });
  routes.get('/:id{.+}', (context) => {
    const id = context.req.param('id');
    const principal = context.get('principal');
    if (principal) checkModelAllowed(principal, id);
    return context.json(toModelObject(models.resolve(id, principal?.project)));
  });
  return routes;
}
