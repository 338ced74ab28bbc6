import { defineSuite } from '../suite.js';

defineSuite('kit', 'pipeline-orchestrator');
