import { defineSuite } from '../suite.js';

defineSuite('harness', 'pipeline-orchestrator');
